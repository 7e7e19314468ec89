# Benchmarks for image plugins (docs/BENCHMARKS.md): builds images from Debian's busybox, times
# `cocov plugin run` of a probe plugin as a definition and as an image, and a first pull of a
# ~100 MB image from a local docker-registry.
import gzip, hashlib, io, json, os, subprocess, sys, tarfile, tempfile, time, urllib.request, socket, statistics

COCOV = sys.argv[1]
work = tempfile.mkdtemp(prefix="imgbench-")
os.chmod(work, 0o755)

def sha(b): return "sha256:" + hashlib.sha256(b).hexdigest()

def tar_layer(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, kind, data, mode in entries:
            info = tarfile.TarInfo(name); info.mode = mode
            if kind == "dir": info.type = tarfile.DIRTYPE; t.addfile(info)
            elif kind == "link": info.type = tarfile.SYMTYPE; info.linkname = data; t.addfile(info)
            else: info.size = len(data); t.addfile(info, io.BytesIO(data))
    return buf.getvalue()

busybox = tar_layer([("bin", "dir", None, 0o755), ("tmp", "dir", None, 0o755),
    ("bin/busybox", "file", open("/bin/busybox", "rb").read(), 0o755)] +
    [("bin/" + a, "link", "busybox", 0o777) for a in ["sh", "cp", "cat", "printf"]])
probe_cmd = ': > "$COCOV_OUTPUT_FILE"'

def image(layers, cmd):
    gz = [gzip.compress(l, compresslevel=1, mtime=0) for l in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Entrypoint": ["/bin/sh", "-c"], "Cmd": [cmd], "Env": ["PATH=/bin"]},
                         "rootfs": {"type": "layers", "diff_ids": [sha(l) for l in layers]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(g), "size": len(g)} for g in gz]}).encode()
    return gz, config, manifest

gz, config, manifest = image([busybox], probe_cmd)
archive = os.path.join(work, "probe.tar")
with tarfile.open(archive, "w") as t:
    def add(name, data):
        info = tarfile.TarInfo(name); info.size = len(data); t.addfile(info, io.BytesIO(data))
    add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    add("index.json", json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": sha(manifest), "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "bench.invalid/cocov/probe:v1"}}]}).encode())
    for b in gz + [config, manifest]:
        add("blobs/sha256/" + sha(b)[7:], b)

port = socket.socket(); port.bind(("127.0.0.1", 0)); host = "127.0.0.1:%d" % port.getsockname()[1]; port.close()
plugins = os.path.join(work, "plugins"); os.mkdir(plugins)
open(os.path.join(plugins, "probe.toml"), "w").write('name = "cocov/defprobe"\ncommand = "/bin/sh"\nargs = ["-c", \':> "$COCOV_OUTPUT_FILE"\']\n')
conf = os.path.join(work, "cocov.toml")
open(conf, "w").write('[images]\nstore_dir = "%s/store"\ninsecure_registries = ["%s"]\ntag_ttl_seconds = 86400\n[worker]\nplugins_dir = "%s"\n' % (work, host, plugins))
env = {k: v for k, v in os.environ.items() if not k.startswith("COCOV_")}; env["COCOV_CONFIG"] = conf; env["RUST_LOG"] = "warn"
def cocov(*args):
    subprocess.run([COCOV, *args], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
cocov("plugin", "import", archive)
empty = os.path.join(work, "empty"); os.mkdir(empty)

def timed(name, n=20):
    times = []
    for _ in range(n):
        t0 = time.perf_counter(); cocov("plugin", "run", name, "--dir", empty); times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], times[0]
for _ in range(3): cocov("plugin", "run", "cocov/defprobe", "--dir", empty)
if os.environ.get("SKIP_PROBE") is None:
    d = timed("cocov/defprobe"); i = timed("bench.invalid/cocov/probe:v1")
    print("definition probe: median %.1f ms p95 %.1f min %.1f" % d)
    print("image probe:      median %.1f ms p95 %.1f min %.1f" % i)

# First pull and unpack of a ~100 MB image (incompressible data in 4 layers) from a local registry.
reg = os.path.join(work, "registry"); os.mkdir(reg)
open(os.path.join(reg, "config.yml"), "w").write("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s/data\nhttp:\n  addr: %s\n" % (reg, host))
server = subprocess.Popen(["/usr/bin/docker-registry", "serve", os.path.join(reg, "config.yml")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        try: urllib.request.urlopen("http://%s/v2/" % host); break
        except Exception: time.sleep(0.1)
    big = [busybox] + [tar_layer([("data%d" % i, "file", os.urandom(25 * 1024 * 1024), 0o644)]) for i in range(4)]
    gz, config, manifest = image(big, probe_cmd)
    for b in gz + [config]:
        r = urllib.request.urlopen(urllib.request.Request("http://%s/v2/bench/big/blobs/uploads/" % host, method="POST"))
        loc = r.headers["Location"]; loc = loc if loc.startswith("http") else "http://" + host + loc
        urllib.request.urlopen(urllib.request.Request(loc + ("&" if "?" in loc else "?") + "digest=" + sha(b), data=b, method="PUT", headers={"Content-Type": "application/octet-stream"}))
    urllib.request.urlopen(urllib.request.Request("http://%s/v2/bench/big/manifests/v1" % host, data=manifest, method="PUT",
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}))
    print("big image: %.1f MB compressed" % (sum(len(g) for g in gz) / 1e6))
    t0 = time.perf_counter(); cocov("plugin", "pull", "%s/bench/big:v1" % host); print("first pull + unpack: %.0f ms" % ((time.perf_counter() - t0) * 1000))
    t0 = time.perf_counter(); cocov("plugin", "pull", "%s/bench/big:v1" % host); print("second pull (stored): %.0f ms" % ((time.perf_counter() - t0) * 1000))
finally:
    server.kill()
    subprocess.run(["rm", "-rf", work])
