// k8s_validate.mjs JSON: validates Kubernetes objects against the API's
// schemas. JSON: [{"file": ..., "doc": {...}}, ...], the documents of the
// YAML files (test_ops.sh parses them with python3-yaml). With the npm
// packages kubernetes-models (core and apps objects) and
// @kubernetes-models/prometheus-operator (ServiceMonitor), found in the
// node_modules directory named by
// RESHIM_K8S_MODULES (default: build/ops-node/node_modules; tests/ops/ops.mk
// installs them there with `make ops-k8s-deps`). Exits 0 when every
// document is valid, 1 otherwise, 77 when the packages are not there.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = process.env.RESHIM_K8S_MODULES || 'build/ops-node/node_modules';
const load = (p) => import(pathToFileURL(path.resolve(dir, p)).href);
let models;
try {
  models = {
    'apps/v1': await load('kubernetes-models/apps/v1/index.js'),
    'v1': await load('kubernetes-models/v1/index.js'),
    'monitoring.coreos.com/v1':
      await load('@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/index.js'),
  };
} catch (e) {
  console.error(`k8s_validate: kubernetes-models and @kubernetes-models/prometheus-operator ` +
                `not found in ${dir} (${e.message.split('\n')[0]})`);
  process.exit(77);
}
let bad = 0, n = 0;
for (const { file, doc } of JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))) {
  {
    const Kind = models[doc.apiVersion] && models[doc.apiVersion][doc.kind];
    if (!Kind) {
      console.error(`${file}: no schema for ${doc.apiVersion} ${doc.kind}`);
      bad++;
      continue;
    }
    try {
      new Kind(doc).validate();
      n++;
      console.log(`  ok: schema: ${file}: ${doc.apiVersion} ${doc.kind} ${doc.metadata?.name}`);
    } catch (e) {
      console.error(`${file}: ${doc.kind} ${doc.metadata?.name}: ${e.message}`);
      bad++;
    }
  }
}
process.exit(bad || n === 0 ? 1 : 0);
