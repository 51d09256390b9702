/** The JSON Schemas of schemas/ and their errors as field problems: shared by the vault, the client, Pulumi and the YAML loader. */
export { SchemaRegistry, SCHEMA_NAMES, findSchemasDir, type JsonSchema, type SchemaName } from './schemas';
export { problemsFromAjv, type FieldProblem } from './problems';
