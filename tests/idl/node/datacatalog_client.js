// Calls a running caddis datacatalog from Node.js, using only the committed .proto files:
// CreateDataset, then GetDataset, then GetDataset for a missing dataset (expects NOT_FOUND).
// Usage: node datacatalog_client.js <host:port> [protos root]
// Prints one JSON object on stdout; exits non-zero on any unexpected result.
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const address = process.argv[2];
const protosRoot = process.argv[3] || path.resolve(__dirname, '..', '..', '..', 'protos');
if (!address) {
  console.error('usage: node datacatalog_client.js <host:port> [protos root]');
  process.exit(2);
}

const definition = protoLoader.loadSync(
  ['caddis_idl/datacatalog/v1/datacatalog.proto', 'caddis_idl/datacatalog/v1/datacatalog_service.proto'],
  { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [protosRoot] },
);
const proto = grpc.loadPackageDefinition(definition);
const Service = proto.caddis_idl.datacatalog.v1.DataCatalogService;
const client = new Service(address, grpc.credentials.createInsecure());

function call(method, request) {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + 10000);
    client[method](request, { deadline }, (err, response) => (err ? reject(err) : resolve(response)));
  });
}

async function main() {
  const id = { project: 'p', domain: 'development', name: 'node-client', version: 'v1' };
  const created = await call('CreateDataset', {
    dataset: { id, metadata: { key_map: { language: 'javascript' } }, partition_keys: ['region'] },
  });
  const got = await call('GetDataset', { dataset: id });
  let missingCode = null;
  try {
    await call('GetDataset', { dataset: { ...id, name: 'missing' } });
  } catch (err) {
    missingCode = grpc.status[err.code];
  }
  const result = {
    created_uuid: created.dataset.id.uuid,
    got_uuid: got.dataset.id.uuid,
    name: got.dataset.id.name,
    metadata: got.dataset.metadata.key_map,
    partition_keys: got.dataset.partition_keys,
    missing_code: missingCode,
  };
  console.log(JSON.stringify(result));
  if (!result.created_uuid || result.created_uuid !== result.got_uuid || missingCode !== 'NOT_FOUND') {
    process.exit(1);
  }
}

main()
  .catch((err) => {
    console.error(`datacatalog client failed: ${err.message || err}`);
    process.exitCode = 1;
  })
  .finally(() => client.close());
