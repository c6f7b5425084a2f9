// The official client flow of a file upload (Convex's docs, "Uploading files"):
// a mutation returns an upload URL, the bytes are POSTed to it with fetch, and a
// mutation saves the storage id. Then the file is read back through getUrl.
//
//   node storage_client.mjs <deployment url> <js dir with node_modules> <file> <content type>
//
// Prints one JSON object for the Python test to check.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";

const [url, jsDir, file, contentType] = process.argv.slice(2);
const require = createRequire(`${jsDir}/package.json`);
const { ConvexHttpClient } = require("convex/browser");
const { anyApi } = require("convex/server");

const client = new ConvexHttpClient(url, { skipConvexDeploymentUrlCheck: true, logger: false });
const bytes = await readFile(file);
const postUrl = await client.mutation(anyApi.files.generateUploadUrl, {});
const posted = await fetch(postUrl, {
  method: "POST",
  headers: { "Content-Type": contentType },
  body: bytes,
});
const { storageId } = await posted.json();
await client.mutation(anyApi.files.save, { storageId, name: "upload" });
const listed = (await client.query(anyApi.files.list, {})).find((f) => f.doc?._id === storageId);
const full = await fetch(listed.url);
const fullBytes = Buffer.from(await full.arrayBuffer());
const part = await fetch(listed.url, { headers: { Range: "bytes=10-19" } });
const partBytes = Buffer.from(await part.arrayBuffer());
console.log(
  JSON.stringify({
    postUrl,
    uploadStatus: posted.status,
    storageId,
    listed,
    full: {
      status: full.status,
      type: full.headers.get("content-type"),
      length: full.headers.get("content-length"),
      same: fullBytes.equals(bytes),
    },
    part: {
      status: part.status,
      range: part.headers.get("content-range"),
      same: partBytes.equals(bytes.subarray(10, 20)),
    },
  }),
);
