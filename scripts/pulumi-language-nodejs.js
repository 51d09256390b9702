#!/usr/bin/env node
// A minimal Pulumi language host for Node.js programs, used where no official
// `pulumi-language-nodejs` can be had (see docs/toolchain.md: the Go module
// proxy reachable here serves no version of that module).
//
// The engine starts this process with the engine's address as its last
// argument, reads the port printed on stdout, and calls the LanguageRuntime
// gRPC service. `Run` starts `@pulumi/pulumi/cmd/run` (resolved from the
// program's own folder, so the program's SDK runs it) with the arguments and
// environment the SDK expects, and reports its exit. Methods the engine can do
// without (code generation, packing, debugging) answer UNIMPLEMENTED, which
// the engine treats as "not supported by this host".
'use strict';

const { spawn } = require('node:child_process');
const path = require('node:path');

// The gRPC stubs ship with @pulumi/pulumi: take the program's own (the engine
// starts this host in the project folder), else the Lifeboat checkout's.
const sdkRoot = path.dirname(require.resolve('@pulumi/pulumi/package.json', {
  paths: [process.cwd(), ...(process.env.LIFEBOAT_ROOT ? [process.env.LIFEBOAT_ROOT] : [])],
}));
const grpc = require(require.resolve('@grpc/grpc-js', { paths: [sdkRoot] }));
const languageGrpc = require(path.join(sdkRoot, 'proto', 'language_grpc_pb.js'));
const languagePb = require(path.join(sdkRoot, 'proto', 'language_pb.js'));
const pluginPb = require(path.join(sdkRoot, 'proto', 'plugin_pb.js'));
const sdkVersion = require(path.join(sdkRoot, 'package.json')).version;

/** The exit code by which the SDK says it already told the user what went wrong. */
const EXIT_AFTER_USER_MESSAGE = 32;

const argv = process.argv.slice(2);
if (argv.includes('-version') || argv.includes('--version')) {
  process.stdout.write(`${sdkVersion}\n`);
  process.exit(0);
}
let engineAddress = argv.filter((a) => !a.startsWith('-')).pop() || '';

/** `ns:name` keys become `ns:config:name`, the form every SDK version reads. */
function configJson(map) {
  const out = {};
  map.forEach((value, key) => {
    const i = key.indexOf(':');
    out[i < 0 ? key : `${key.slice(0, i)}:config:${key.slice(i + 1)}`] = value;
  });
  return JSON.stringify(out);
}

function run(call, callback) {
  const req = call.request;
  const info = req.getInfo();
  const programDir = (info && info.getProgramDirectory()) || req.getPwd();
  const entryPoint = (info && info.getEntryPoint()) || req.getProgram() || '.';
  let runPath;
  try {
    runPath = require.resolve('@pulumi/pulumi/cmd/run', { paths: [programDir] });
  } catch (err) {
    const res = new languagePb.RunResponse();
    res.setError(`cannot find @pulumi/pulumi from ${programDir}: run npm install there (${err.message})`);
    callback(null, res);
    return;
  }
  const args = [runPath];
  const add = (flag, value) => { if (value) args.push(`--${flag}`, String(value)); };
  add('monitor', req.getMonitorAddress());
  add('engine', engineAddress);
  add('organization', req.getOrganization());
  add('project', req.getProject());
  add('root-directory', info && info.getRootDirectory());
  add('stack', req.getStack());
  add('pwd', programDir);
  if (req.getDryrun()) args.push('--dry-run');
  add('parallel', req.getParallel());
  args.push(entryPoint, ...req.getArgsList());

  const env = {
    ...process.env,
    PULUMI_CONFIG: configJson(req.getConfigMap()),
    PULUMI_CONFIG_SECRET_KEYS: JSON.stringify(req.getConfigsecretkeysList()),
  };
  const child = spawn(process.execPath, args, { cwd: programDir, env, stdio: ['ignore', 'inherit', 'inherit'] });
  child.on('error', (err) => {
    const res = new languagePb.RunResponse();
    res.setError(`could not start node: ${err.message}`);
    callback(null, res);
  });
  child.on('exit', (code, signal) => {
    const res = new languagePb.RunResponse();
    if (code === EXIT_AFTER_USER_MESSAGE) {
      res.setBail(true);
    } else if (code !== 0) {
      res.setError(signal ? `Program was killed by ${signal}` : `Program exited with non-zero exit code: ${code}`);
    }
    callback(null, res);
  });
}

const service = {
  handshake(call, callback) {
    engineAddress = call.request.getEngineAddress() || engineAddress;
    callback(null, new languagePb.LanguageHandshakeResponse());
  },
  // Plugins are found by the engine on demand; dynamic providers need none.
  getRequiredPlugins(_call, callback) {
    callback(null, new languagePb.GetRequiredPluginsResponse());
  },
  getRequiredPackages(_call, callback) {
    callback(null, new languagePb.GetRequiredPackagesResponse());
  },
  getPluginInfo(_call, callback) {
    const info = new pluginPb.PluginInfo();
    info.setVersion(sdkVersion);
    callback(null, info);
  },
  installDependencies(call) {
    // Dependencies are the project's business (npm ci); nothing to stream.
    call.end();
  },
  getProgramDependencies(_call, callback) {
    callback(null, new languagePb.GetProgramDependenciesResponse());
  },
  about(_call, callback) {
    const res = new languagePb.AboutResponse();
    res.setExecutable(process.execPath);
    res.setVersion(process.version);
    callback(null, res);
  },
  run,
};

const server = new grpc.Server();
server.addService(languageGrpc.LanguageRuntimeService, service);
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    process.stderr.write(`language host could not listen: ${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`${port}\n`);
});
// The engine ends plugins by signal; leave quietly.
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.tryShutdown(() => process.exit(0)));
