// Uploads a file to the classroom server with tus-js-client (the npm package, unmodified).
// Driven by tests/third_party_clients.rs. Prints one JSON object per line on stdout.
//
// usage: node tus-js-upload.mjs ENDPOINT TOKEN FILE METADATA_JSON URL_STORAGE MODE
//   MODE "interrupt": kill this process (SIGKILL) once half the file is sent
//   MODE "resume":    find the upload in URL_STORAGE and finish it
import * as fs from 'node:fs';
import * as tus from 'tus-js-client';

const [endpoint, token, file, metadataJson, storagePath, mode] = process.argv.slice(2);
const size = fs.statSync(file).size;
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const upload = new tus.Upload(fs.createReadStream(file), {
  endpoint,
  headers: { Authorization: `Bearer ${token}` },
  metadata: JSON.parse(metadataJson),
  uploadSize: size,
  chunkSize: 256 * 1024,
  retryDelays: [0, 200, 500, 1000, 2000],
  urlStorage: new tus.FileUrlStorage(storagePath),
  storeFingerprintForResuming: true,
  removeFingerprintOnSuccess: false,
  onUploadUrlAvailable() {
    say({ event: 'url', url: upload.url });
  },
  onProgress(sent, total) {
    say({ event: 'progress', sent, total });
    if (mode === 'interrupt' && sent >= total / 2) {
      // The hard way: no clean abort, the connection just dies mid-chunk.
      process.kill(process.pid, 'SIGKILL');
    }
  },
  onError(err) {
    say({ event: 'error', message: String(err) });
    process.exit(1);
  },
  onSuccess() {
    say({ event: 'success', url: upload.url });
    process.exit(0);
  },
});

if (mode === 'resume') {
  const previous = await upload.findPreviousUploads();
  say({ event: 'previous', count: previous.length });
  if (previous.length === 0) {
    say({ event: 'error', message: 'no previous upload to resume' });
    process.exit(1);
  }
  upload.resumeFromPreviousUpload(previous[0]);
}
upload.start();
