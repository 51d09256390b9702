/**
 * A YAML document read into plain JSON data, keeping where each value was
 * written: every JSON Pointer of the data maps to the position of its value
 * (and of its key, for mapping entries), so that problems found later in the
 * data (schema, references) are reported at a line and column.
 *
 * Only the JSON data model is accepted: mappings with string keys, sequences,
 * strings, finite numbers, booleans and null. YAML 1.2 core schema (so `yes`
 * and `on` are strings), one document, no duplicate keys, no merge keys
 * (`<<`, a YAML 1.1 feature), no custom tags. Anchors and aliases are
 * allowed; a value reached through an alias is reported where the anchored
 * node is written.
 */

import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node as YamlNode, type YAMLError, type YAMLMap, type YAMLSeq } from 'yaml';
import type { FieldProblem } from '../validation';

/** A 1-based line and column. */
export interface SourcePosition {
  readonly line: number;
  readonly column: number;
}

/** A problem of the YAML text itself, already placed. */
export interface YamlTextProblem extends FieldProblem {
  readonly code: string;
  readonly line: number;
  readonly column: number;
  /** The value as written. */
  readonly actual?: string;
  /** The offending line, for syntax errors. */
  readonly sourceLine?: string;
}

/** Where one value of the data was written. */
interface Entry {
  /** Offset of the value's first character. */
  readonly value: number;
  /** Offset of the key, for a mapping entry. */
  readonly key?: number;
  /** The scalar as written, or `a mapping` / `a sequence`. */
  readonly text: string;
}

export interface ReadYamlOptions {
  /** Refuse documents that expand (through aliases) to more values than this. @default 200000 */
  readonly maxValues?: number;
}

/** The result of reading a YAML text: the data (when the text is well-formed) and where each value is. */
export interface YamlSource {
  /** The JSON data; `undefined` when the text has syntax errors or is empty. */
  readonly data: unknown;
  /** Syntax and data-model problems, in file order. Empty when `data` is usable. */
  readonly problems: readonly YamlTextProblem[];
  /**
   * Position of the value at `path` (a JSON Pointer), or of its key with
   * `atKey`; for a path that does not exist (a missing property), the
   * position of the nearest enclosing value that does.
   */
  locate(path: string, atKey?: boolean): SourcePosition;
  /** The value at `path` as written (`60`, `"x"`, `a mapping`), if it exists. */
  textAt(path: string): string | undefined;
}

const MAX_TEXT = 80;

function pointerEscape(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

function parentOf(path: string): string | undefined {
  if (path === '') return undefined;
  return path.slice(0, path.lastIndexOf('/'));
}

function clip(text: string): string {
  const one = text.replace(/\s*\n\s*/g, ' ');
  return one.length <= MAX_TEXT ? one : `${one.slice(0, MAX_TEXT - 1)}…`;
}

const SYNTAX_CODES: Readonly<Record<string, string>> = {
  TAB_AS_INDENT: 'yaml.tabIndent',
  MULTIPLE_DOCS: 'yaml.multipleDocuments',
  DUPLICATE_KEY: 'yaml.duplicateKey',
  TAG_RESOLVE_FAILED: 'yaml.unknownTag',
  BAD_ALIAS: 'yaml.badAlias',
  RESOURCE_EXHAUSTION: 'yaml.tooLarge',
};

/** Our words where the parser's speak of its own API. */
const MESSAGES: Readonly<Record<string, (yamlMessage: string) => string>> = {
  TAB_AS_INDENT: () => 'tabs are not allowed as indentation; indent with spaces',
  MULTIPLE_DOCS: () => 'a protection file holds one document; remove this `---` and what follows, or split the file',
  TAG_RESOLVE_FAILED: (m) => `${m.replace(/^Unresolved tag/, 'unknown tag')}; protection files use no tags`,
};

/** `tabs are not allowed as indentation` from yaml's message, without its position suffix. */
function syntaxMessage(e: YAMLError): string {
  const own = MESSAGES[e.code];
  if (own !== undefined) return own(e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, ''));
  const first = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
  return first.charAt(0).toLowerCase() + first.slice(1);
}

class Reader {
  readonly entries = new Map<string, Entry>();
  readonly problems: YamlTextProblem[] = [];
  private count = 0;
  private readonly stack: YamlNode[] = [];
  /** Aliases being expanded, outermost first: offset and path. */
  private readonly aliases: [number, string][] = [];
  exhausted = false;

  constructor(
    private readonly doc: Document,
    private readonly text: string,
    private readonly lines: LineCounter,
    private readonly maxValues: number,
  ) {}

  position(offset: number): SourcePosition {
    const p = this.lines.linePos(offset);
    return { line: p.line, column: p.col };
  }

  private problem(offset: number, path: string, code: string, message: string, actual?: string): void {
    this.problems.push({ ...this.position(offset), path, code, message, ...(actual === undefined ? {} : { actual }) });
  }

  private record(path: string, node: YamlNode, keyOffset: number | undefined, text: string): void {
    const value = node.range?.[0] ?? keyOffset ?? 0;
    this.entries.set(path, keyOffset === undefined ? { value, text } : { value, key: keyOffset, text });
  }

  /** Convert `node` (at `path`) to JSON data; `keyOffset` is its key's offset in a mapping. */
  read(node: YamlNode | null, path: string, keyOffset: number | undefined, fallback: number): unknown {
    if (this.exhausted) return null;
    if (++this.count > this.maxValues) {
      this.exhausted = true;
      // Blame the outermost alias being expanded, if any: that is where the repetition starts.
      const [at, where] = this.aliases[0] ?? [node?.range?.[0] ?? fallback, path];
      this.problem(at, where, 'yaml.tooLarge', `the document expands to more than ${this.maxValues} values${this.aliases.length > 0 ? ' through this alias' : ''}`);
      return null;
    }
    if (node === null) {
      this.entries.set(path, { value: keyOffset ?? fallback, ...(keyOffset === undefined ? {} : { key: keyOffset }), text: 'nothing' });
      return null;
    }
    if (isAlias(node)) {
      const target = node.resolve(this.doc);
      const at = node.range?.[0] ?? fallback;
      if (target === undefined) {
        this.problem(at, path, 'yaml.badAlias', `alias *${node.source} names no anchor defined before it`);
        return null;
      }
      if (this.stack.includes(target)) {
        this.problem(at, path, 'yaml.recursiveAlias', `alias *${node.source} refers to a value that contains it`);
        return null;
      }
      this.aliases.push([at, path]);
      let value: unknown;
      try {
        value = this.read(target, path, keyOffset, at);
      } finally {
        this.aliases.pop();
      }
      // The alias itself is where the whole value is used; its parts stay at the anchor.
      const entry = this.entries.get(path);
      if (entry !== undefined) this.entries.set(path, { ...entry, value: at });
      return value;
    }
    if (isScalar(node)) {
      const range = node.range ?? [fallback, fallback, fallback];
      const written = clip(this.text.slice(range[0], range[1]));
      if (written === '') {
        // `key:` with nothing after it: the key is where the value is missing.
        const at = keyOffset ?? range[0];
        this.entries.set(path, { value: at, ...(keyOffset === undefined ? {} : { key: keyOffset }), text: 'nothing' });
      } else this.record(path, node, keyOffset, written);
      const v = node.value;
      if (typeof v === 'number') {
        if (!Number.isFinite(v)) this.problem(range[0], path, 'yaml.nonFiniteNumber', 'must be a finite number', this.entries.get(path)?.text);
        return v;
      }
      if (typeof v === 'string' || typeof v === 'boolean' || v === null) return v;
      const tag = (node.tag ?? typeof v).replace(/^tag:yaml\.org,2002:/, '!!');
      this.problem(range[0], path, 'yaml.unsupportedValue', `a ${tag} value is not allowed; use a string, number, boolean, mapping or sequence`);
      return null;
    }
    if (!isSeq(node) && !isMap(node)) {
      this.problem(fallback, path, 'yaml.unsupportedValue', 'unsupported YAML node');
      return null;
    }
    // Collections being read, so that an alias inside one to itself is refused instead of expanding forever.
    this.stack.push(node);
    try {
      return isSeq(node) ? this.readSeq(node, path, keyOffset, fallback) : this.readMap(node, path, keyOffset, fallback);
    } finally {
      this.stack.pop();
    }
  }

  private readSeq(node: YAMLSeq, path: string, keyOffset: number | undefined, fallback: number): unknown[] {
    this.record(path, node, keyOffset, 'a sequence');
    const out: unknown[] = [];
    node.items.forEach((item, i) => {
      out.push(this.read(item as YamlNode | null, `${path}/${i}`, undefined, node.range?.[0] ?? fallback));
    });
    return out;
  }

  private readMap(node: YAMLMap, path: string, keyOffset: number | undefined, fallback: number): Record<string, unknown> {
    this.record(path, node, keyOffset, 'a mapping');
    const out: Record<string, unknown> = {};
    const seen = new Map<string, number>();
    for (const pair of node.items) {
      let keyNode = pair.key as YamlNode | null;
      const keyAt = keyNode?.range?.[0] ?? node.range?.[0] ?? fallback;
      if (keyNode !== null && isAlias(keyNode)) keyNode = keyNode.resolve(this.doc) ?? null;
      if (keyNode === null || !isScalar(keyNode) || keyNode.value === null || typeof keyNode.value === 'object') {
        this.problem(keyAt, path, 'yaml.invalidKey', 'a mapping key must be a string');
        continue;
      }
      const key = String(keyNode.value);
      const sub = `${path}/${pointerEscape(key)}`;
      if (key === '<<' && keyNode.type === 'PLAIN') {
        this.problem(keyAt, sub, 'yaml.mergeKey', 'merge keys (<<) are not supported; write the settings out (an alias can repeat a whole value)');
        continue;
      }
      const first = seen.get(key);
      if (first !== undefined) {
        const p = this.position(first);
        this.problem(keyAt, sub, 'yaml.duplicateKey', `duplicate key '${key}' (first at line ${p.line}, column ${p.column}); keys of a mapping are unique`);
        continue;
      }
      seen.set(key, keyAt);
      const value = this.read(pair.value as YamlNode | null, sub, keyAt, keyAt);
      Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
}

/**
 * Read a YAML text into JSON data with positions. Pure; never throws for
 * bad input: syntax errors (each with its offending line), duplicate keys,
 * aliases to nothing and values outside the JSON data model are `problems`.
 * After a syntax error or a document too large `data` is `undefined` (the structure may be misread);
 * after data-model problems it holds what could be read.
 */
export function readYaml(text: string, options: ReadYamlOptions = {}): YamlSource {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: false, prettyErrors: false, strict: true, version: '1.2', keepSourceTokens: false });
  const sourceLines = text.split(/\r?\n|\r/);
  const problems: YamlTextProblem[] = [];
  for (const e of [...doc.errors, ...doc.warnings]) {
    const p = lines.linePos(Math.min(e.pos[0], text.length));
    problems.push({
      code: SYNTAX_CODES[e.code] ?? 'yaml.syntax',
      path: '',
      message: syntaxMessage(e),
      line: p.line,
      column: p.col,
      ...(sourceLines[p.line - 1] === undefined ? {} : { sourceLine: sourceLines[p.line - 1]! }),
    });
  }
  const reader = new Reader(doc, text, lines, options.maxValues ?? 200_000);
  const contents = doc.contents as YamlNode | null;
  let data: unknown;
  if (problems.length === 0 && contents !== null) data = reader.read(contents, '', undefined, 0);
  if (reader.exhausted) {
    // What was read before the limit is a fragment: nothing more to say about it.
    data = undefined;
    problems.push(...reader.problems.filter((p) => p.code === 'yaml.tooLarge'));
  } else problems.push(...reader.problems);

  const nearest = (path: string): Entry | undefined => {
    for (let p: string | undefined = path; p !== undefined; p = parentOf(p)) {
      const e = reader.entries.get(p);
      if (e !== undefined) return e;
    }
    return undefined;
  };
  return {
    data,
    problems,
    locate(path, atKey = false) {
      const exact = reader.entries.get(path);
      const e = exact ?? nearest(path);
      if (e === undefined) return { line: 1, column: 1 };
      return reader.position(atKey && exact !== undefined && exact.key !== undefined ? exact.key : e.value);
    },
    textAt(path) {
      return reader.entries.get(path)?.text;
    },
  };
}
