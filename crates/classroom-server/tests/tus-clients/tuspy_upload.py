"""Uploads a file to the classroom server with tuspy (the PyPI package, unmodified).

Driven by tests/third_party_clients.rs. Prints one JSON object per line on stdout.
usage: python3 tuspy_upload.py ENDPOINT TOKEN FILE METADATA_JSON URL_STORAGE MODE
  MODE "interrupt": kill this process (SIGKILL) once half the file is sent
  MODE "resume":    find the upload in URL_STORAGE and finish it
Every chunk carries Upload-Checksum (sha1), so the checksum extension is exercised too.
"""
import json
import os
import signal
import sys

from tusclient import client
from tusclient.storage import filestorage

endpoint, token, path, metadata_json, storage_path, mode = sys.argv[1:7]


def say(**o):
    print(json.dumps(o), flush=True)


tus = client.TusClient(endpoint, headers={"Authorization": f"Bearer {token}"})
storage = filestorage.FileStorage(storage_path)
uploader = tus.uploader(
    file_path=path,
    chunk_size=256 * 1024,
    metadata=json.loads(metadata_json),
    store_url=True,
    url_storage=storage,
    upload_checksum=True,
    retries=3,
    retry_delay=1,
)
# On resume the stored URL and the server's offset (HEAD) are known before any byte is sent.
say(event="start", url=uploader.url, offset=uploader.offset)
size = uploader.get_file_size()
while uploader.offset < size:
    uploader.upload_chunk()
    say(event="url", url=uploader.url)
    say(event="progress", sent=uploader.offset, total=size)
    if mode == "interrupt" and uploader.offset >= size / 2:
        os.kill(os.getpid(), signal.SIGKILL)
say(event="success", url=uploader.url)
storage.close()
