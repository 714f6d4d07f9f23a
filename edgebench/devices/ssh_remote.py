"""What the SSH transport runs on the device besides the runner: two small stdlib-only Python scripts
(run with the profile's python, so no sha256sum/tar/GNU tools are assumed) and the runner tree archive.

Layout under the device's workdir: ``blobs/<sha256>/<name>`` (content-addressed files),
``runner/<tree hash>/`` (one tree of the runner's files per version, complete once ``.complete`` exists) and
``jobs/<id>/`` (job.json and outputs, removed after the job unless the profile keeps them)."""

from __future__ import annotations

import functools
import hashlib
import io
import tarfile

from edgebench.paths import runner_dir

# The sha256 of a file, as both device-side scripts compute it.
_SHA = r"""
def sha(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()
"""

STALE_JOB_S = 600.0  # a job folder untouched this long, its runner gone, is a leftover

# argv[1]: {"workdir", "blobs": [[sha256, name]], "runner": hash, "job": id or null, "stale": [job ids],
#           "stale_job_s": seconds}
# Prints {"workdir": absolute, "missing": [sha256 …], "runner": bool}. Upload leftovers (".part-" files
# untouched for a minute: their writer is gone) are removed so nothing half-written stays behind, and so are
# job folders a lost connection or a killed host left (untouched for STALE_JOB_S and no live runner in them:
# a job writes its runner's pid first, and its outputs when it ends, so a folder in use is never that old).
PREPARE = r"""
import hashlib, json, os, shutil, sys, time
a = json.loads(sys.argv[1])
wd = os.path.abspath(os.path.expanduser(a["workdir"]))
""" + _SHA + r"""
missing = []
for digest, name in a["blobs"]:
    d = os.path.join(wd, "blobs", digest)
    os.makedirs(d, exist_ok=True)
    for old in os.listdir(d):
        if ".part-" in old and time.time() - os.path.getmtime(os.path.join(d, old)) > 60:  # file age: wall clock vs mtime (utc epoch), not a duration
            os.remove(os.path.join(d, old))
    try:
        ok = sha(os.path.join(d, name)) == digest
    except OSError:
        ok = False
    if not ok:
        missing.append(digest)
os.makedirs(os.path.join(wd, "runner"), exist_ok=True)
for old in a.get("stale", []):
    shutil.rmtree(os.path.join(wd, "jobs", old), ignore_errors=True)
jobs = os.path.join(wd, "jobs")
for old in os.listdir(jobs) if os.path.isdir(jobs) else []:
    d = os.path.join(jobs, old)
    try:
        if time.time() - os.path.getmtime(d) < a["stale_job_s"]:  # file age: wall clock vs mtime, as above
            continue
        try:
            with open(os.path.join(d, "pid")) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            pid = 0  # the job never started its runner
        if pid > 0:
            os.kill(pid, 0)
            continue  # its runner still runs
    except ProcessLookupError:
        pass
    except OSError:
        continue  # gone meanwhile, or a live process that is not ours
    shutil.rmtree(d, ignore_errors=True)
if a.get("job"):
    os.makedirs(os.path.join(wd, "jobs", a["job"]))
runner = os.path.isfile(os.path.join(wd, "runner", a["runner"], ".complete"))
print(json.dumps({"workdir": wd, "missing": missing, "runner": runner}))
"""

# argv[1]: {"files": [[part path, final path, sha256]], "runner": [tar path, sha256, final dir] or null}
# Verifies each upload's sha256 before renaming it into place; prints the paths that failed.
FINALIZE = r"""
import hashlib, json, os, shutil, sys, tarfile
a = json.loads(sys.argv[1])
""" + _SHA + r"""
bad = []
for part, final, digest in a["files"]:
    if sha(part) == digest:
        os.replace(part, final)
    else:
        os.remove(part)
        bad.append(final)
if a.get("runner"):
    tar, digest, final = a["runner"]
    tmp = tar + ".d"
    if sha(tar) == digest:
        with tarfile.open(tar) as t:
            if hasattr(tarfile, "data_filter"):
                t.extractall(tmp, filter="data")
            else:
                t.extractall(tmp)
        open(os.path.join(tmp, ".complete"), "w").close()
        if os.path.isdir(final):
            shutil.rmtree(final)
        os.rename(tmp, final)
    else:
        bad.append(final)
    os.remove(tar)
print(json.dumps({"bad": bad}))
"""


@functools.lru_cache(maxsize=1)
def runner_tree() -> tuple[str, bytes]:
    """(hash of the runner's folder, a reproducible tar of it): pushed once per version of the runner code."""
    root = runner_dir()
    files = sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                   and p.suffix != ".pyc")
    digest = hashlib.sha256()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in files:
            rel = path.relative_to(root).as_posix()
            data = path.read_bytes()
            digest.update(rel.encode() + b"\0" + data + b"\0")
            info = tarfile.TarInfo(rel)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return digest.hexdigest()[:16], buf.getvalue()

