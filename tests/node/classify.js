// A Node client of ErrorTaxa: @grpc/grpc-js and @grpc/proto-loader over the repository's protos.
//
//   node classify.js HOST:PORT        (token, if any, in $ERRORTAXA_TOKEN)
//
// Checks health (protos/grpc/health/v1/health.proto), classifies two samples asking for the
// summary and the records as structured messages, and prints one JSON object: the health status,
// the category of each sample, the summary and the first record, all read from the messages
// (google.protobuf.Struct), with no JSON text parsed.
"use strict";

const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const PROTOS = path.resolve(__dirname, "..", "..", "protos");
const OPTIONS = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true, includeDirs: [PROTOS] };

function load(file) {
  return grpc.loadPackageDefinition(protoLoader.loadSync(file, OPTIONS));
}

// google.protobuf.Value and Struct as plain JavaScript values.
function value(v) {
  switch (v.kind) {
    case "structValue": return struct(v.structValue);
    case "listValue": return (v.listValue.values || []).map(value);
    case "numberValue": return v.numberValue;
    case "stringValue": return v.stringValue;
    case "boolValue": return v.boolValue;
    default: return null;
  }
}

function struct(s) {
  const out = {};
  for (const [key, v] of Object.entries((s && s.fields) || {})) out[key] = value(v);
  return out;
}

function call(client, method, request, metadata) {
  return new Promise((resolve, reject) => {
    client[method](request, metadata, { deadline: Date.now() + 30000 }, (error, response) =>
      error ? reject(error) : resolve(response));
  });
}

async function main() {
  const address = process.argv[2];
  const metadata = new grpc.Metadata();
  if (process.env.ERRORTAXA_TOKEN) metadata.set("authorization", `Bearer ${process.env.ERRORTAXA_TOKEN}`);
  const credentials = grpc.credentials.createInsecure();
  const health = new (load("grpc/health/v1/health.proto").grpc.health.v1.Health)(address, credentials);
  const errortaxa = new (load("errortaxa/v1/service.proto").errortaxa.v1.ErrorTaxa)(address, credentials);

  const status = await call(health, "Check", { service: "errortaxa.v1.ErrorTaxa" }, metadata);
  const response = await call(errortaxa, "Classify", {
    samples: { target: [250, 65], pred: [248, 66], label_offsets: [0, 1, 3], label_values: [250, 65, 66] },
    options: { summary: true, records: true, structured: true },
  }, metadata);
  const category = response.axes[0];
  console.log(JSON.stringify({
    health: status.status,
    taxonomy: response.taxonomy.name,
    axis: category.axis,
    categories: category.value.map((i) => category.values[i]),
    counts: response.summary.counts,
    summary: struct(response.summary.data),
    record: struct(response.records[0]),
    record_json: response.record_json.length,
  }));
  health.close();
  errortaxa.close();
}

main().catch((error) => {
  console.error(`${error.code !== undefined ? grpc.status[error.code] + ": " : ""}${error.details || error.message}`);
  process.exit(1);
});
