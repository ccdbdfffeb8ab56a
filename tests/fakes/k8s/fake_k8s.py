#!/usr/bin/python3
"""fake_k8s.py — a stateful fake Kubernetes API server for the k8s-pool backend's tests and bench
(host → k8s-pool backend → *this fake* → simulated kubelet → real agentix-server per pod).

It reproduces the behaviour the project's Kubernetes notes (k8s-pool.md) ask of a faithful fake:
a global monotonic resourceVersion bumped by every write (status writes included); label and
field selectors (malformed → 400); JSON-patch (test → 422), merge and strategic-merge patches,
stale resourceVersion / UID preconditions → 409, immutable pod fields → 422, unknown patch type →
415; watch streams (chunked, one JSON event per line, selector enter/leave as ADDED/DELETED,
BOOKMARKs, timeoutSeconds, 410 Expired as an ERROR event once history is compacted); graceful
deletion; Bearer and client-certificate TLS auth; a ReplicaSet controller that orphans pods that
stop matching its selector and creates replacements; and a simulated kubelet that really runs each
pod's runtime as an `agentix-server` process, restarts it with a new containerID when the image
changes (after a configurable delay), and fails image pulls or crash-loops for injected images.

Pods share 127.0.0.1, so where a cluster gives each pod its own IP the fake's admission gives each
pod its own containerPort (the runtime binds it): `http://{podIP}:{containerPort}` stays the honest
pod-IP URL. Everything is bounded: watches end at timeoutSeconds (≤ 300 s) or at shutdown, each
pod process is stopped on pod deletion and at exit (and dies with the fake through PDEATHSIG).

Every pod gets a pod-bound service-account token (random, one per pod object, in a file under
sa/<uid>/ beside the port file; valid while that pod exists) and the env a kubelet gives a
container (KUBERNETES_SERVICE_HOST/PORT = this fake, AGENTIX_K8S_TOKEN_FILE/CA_FILE pointing at
the token and the run's CA, downward-API fieldRefs metadata.name/namespace/uid). A request with a
pod's token is what the pool's RBAC + ValidatingAdmissionPolicy allow it (docs/K8S.md): DELETE of
that very pod, nothing else (403), with the UID precondition honoured (409).

Test hooks live under /fake/ (same auth): GET /fake/stats, POST /fake/faults, POST /fake/config,
POST /fake/compact. /fake/config's hold_ready: true keeps containers started from then on from
becoming Ready until it is set false again, so a test can empty the pool without racing a clock.
"""
import argparse
import base64
import bisect
import copy
import ctypes
import hashlib
import http.server
import json
import os
import queue
import random
import re
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid

MAX_BODY = 1 << 20
MAX_WATCH_SECONDS = 300
LABEL_VALUE_RE = re.compile(r'^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$')
IMMUTABLE_MSG = ('Pod "%s" is invalid: spec: Forbidden: pod updates may not change fields other '
                 'than `spec.containers[*].image`, `spec.initContainers[*].image`, '
                 '`spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing '
                 'tolerations) or `spec.terminationGracePeriodSeconds` (allow it to be set to 1 '
                 'if it was previously negative)')


class ApiError(Exception):
    def __init__(self, code, reason, message, name=None, kind='pods'):
        super().__init__(message)
        self.code, self.reason, self.message, self.name, self.kind = code, reason, message, name, kind

    def status(self):
        s = {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Failure',
             'message': self.message, 'reason': self.reason, 'code': self.code}
        if self.name is not None:
            s['details'] = {'name': self.name, 'kind': self.kind}
        return s


def now_rfc3339():
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())


# ---------------------------------------------------------------- selectors

def parse_label_selector(text):
    """Returns a list of (key, op, values); raises ApiError 400 when malformed."""
    reqs = []
    if not text:
        return reqs
    parts, depth, cur = [], 0, ''
    for ch in text:
        if ch == '(':
            depth += 1
        elif ch == ')':
            depth -= 1
        if ch == ',' and depth == 0:
            parts.append(cur)
            cur = ''
        else:
            cur += ch
    parts.append(cur)
    key_re = r'[A-Za-z0-9][-A-Za-z0-9_./]*'
    for p in parts:
        p = p.strip()
        m = (re.fullmatch(r'(%s)\s*(==|=|!=)\s*([-A-Za-z0-9_.]*)' % key_re, p)
             or re.fullmatch(r'(%s)\s+(in|notin)\s+\(([^()]*)\)' % key_re, p)
             or re.fullmatch(r'(!?)(%s)' % key_re, p))
        if not m:
            raise ApiError(400, 'BadRequest', 'unable to parse requirement: %r' % p)
        g = m.groups()
        if len(g) == 2:
            reqs.append((g[1], '!exists' if g[0] else 'exists', []))
        elif g[1] in ('in', 'notin'):
            vals = [v.strip() for v in g[2].split(',')]
            if any(not LABEL_VALUE_RE.match(v) for v in vals):
                raise ApiError(400, 'BadRequest', 'invalid label value in %r' % p)
            reqs.append((g[0], g[1], vals))
        else:
            if not LABEL_VALUE_RE.match(g[2]):
                raise ApiError(400, 'BadRequest', 'invalid label value: %r' % g[2])
            reqs.append((g[0], '!=' if g[1] == '!=' else '=', [g[2]]))
    return reqs


def labels_match(reqs, labels):
    for key, op, vals in reqs:
        has = key in labels
        v = labels.get(key)
        if op == 'exists' and not has or op == '!exists' and has:
            return False
        if op == '=' and v != vals[0] or op == '!=' and has and v == vals[0]:
            return False
        if op == 'in' and v not in vals or op == 'notin' and has and v in vals:
            return False
    return True


FIELDS = {'metadata.name': lambda o: o['metadata'].get('name', ''),
          'metadata.namespace': lambda o: o['metadata'].get('namespace', ''),
          'status.phase': lambda o: o.get('status', {}).get('phase', ''),
          'spec.nodeName': lambda o: o.get('spec', {}).get('nodeName', '')}


def parse_field_selector(text):
    reqs = []
    for p in (text.split(',') if text else []):
        m = re.fullmatch(r'\s*([a-zA-Z.]+)\s*(==|=|!=)\s*([^,]*)\s*', p)
        if not m:
            raise ApiError(400, 'BadRequest', 'invalid field selector: %r' % p)
        if m.group(1) not in FIELDS:
            raise ApiError(400, 'BadRequest',
                           'field label not supported: %s' % m.group(1))
        reqs.append((m.group(1), m.group(2) != '!=', m.group(3)))
    return reqs


def fields_match(reqs, obj):
    return all((FIELDS[f](obj) == v) == eq for f, eq, v in reqs)


# ---------------------------------------------------------------- patches

def pointer_tokens(path):
    if path == '':
        return []
    if not path.startswith('/'):
        raise ApiError(422, 'Invalid', 'invalid JSON pointer %r' % path)
    return [t.replace('~1', '/').replace('~0', '~') for t in path[1:].split('/')]


def pointer_parent(doc, path):
    toks = pointer_tokens(path)
    if not toks:
        raise ApiError(422, 'Invalid', 'the root cannot be the target of this op')
    cur = doc
    for t in toks[:-1]:
        if isinstance(cur, list):
            if not t.isdigit() or int(t) >= len(cur):
                raise ApiError(422, 'Invalid', 'doc is missing path: %s' % path)
            cur = cur[int(t)]
        elif isinstance(cur, dict) and t in cur:
            cur = cur[t]
        else:
            raise ApiError(422, 'Invalid', 'doc is missing path: %s' % path)
    return cur, toks[-1]


def pointer_get(doc, path):
    parent, last = pointer_parent(doc, path)
    if isinstance(parent, list):
        if not last.isdigit() or int(last) >= len(parent):
            raise ApiError(422, 'Invalid', 'doc is missing path: %s' % path)
        return parent[int(last)]
    if not isinstance(parent, dict) or last not in parent:
        raise ApiError(422, 'Invalid', 'doc is missing path: %s' % path)
    return parent[last]


def json_patch(doc, ops):
    if not isinstance(ops, list):
        raise ApiError(400, 'BadRequest', 'a JSON patch must be an array of operations')
    if len(ops) > 10000:
        raise ApiError(413, 'RequestEntityTooLarge', 'too many patch operations')
    for op in ops:
        if not isinstance(op, dict) or 'op' not in op or 'path' not in op:
            raise ApiError(400, 'BadRequest', 'malformed JSON patch operation: %r' % (op,))
        kind, path = op['op'], op['path']
        if kind == 'test':
            if pointer_get(doc, path) != op.get('value'):
                raise ApiError(422, 'Invalid',
                               'the server rejected our request due to an error in our request: '
                               'testing value %s failed' % path)
            continue
        if kind in ('move', 'copy'):
            value = copy.deepcopy(pointer_get(doc, op.get('from', '')))
            if kind == 'move':
                json_patch(doc, [{'op': 'remove', 'path': op['from']}])
            json_patch(doc, [{'op': 'add', 'path': path, 'value': value}])
            continue
        parent, last = pointer_parent(doc, path)
        if kind == 'add':
            if isinstance(parent, list):
                idx = len(parent) if last == '-' else int(last) if last.isdigit() else -1
                if idx < 0 or idx > len(parent):
                    raise ApiError(422, 'Invalid', 'bad array index in %s' % path)
                parent.insert(idx, op.get('value'))
            else:
                parent[last] = op.get('value')
        elif kind in ('replace', 'remove'):
            pointer_get(doc, path)  # must exist
            if kind == 'replace':
                parent[int(last) if isinstance(parent, list) else last] = op.get('value')
            else:
                del parent[int(last) if isinstance(parent, list) else last]
        else:
            raise ApiError(422, 'Invalid', 'unknown JSON patch op %r' % kind)
    return doc


def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        else:
            target[k] = merge_patch(target.get(k), v)
    return target


MERGE_KEYS = {'containers': 'name', 'initContainers': 'name', 'ownerReferences': 'uid',
              'volumes': 'name', 'env': 'name', 'ports': 'containerPort'}


def strategic_merge(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        elif k in MERGE_KEYS and isinstance(v, list):
            key = MERGE_KEYS[k]
            items = list(target.get(k) or [])
            for item in v:
                if not isinstance(item, dict) or key not in item:
                    raise ApiError(400, 'BadRequest', 'list %s needs merge key %s' % (k, key))
                at = next((i for i, e in enumerate(items) if e.get(key) == item[key]), None)
                if item.get('$patch') == 'delete':
                    if at is not None:
                        items.pop(at)
                elif at is None:
                    items.append(copy.deepcopy(item))
                else:
                    items[at] = strategic_merge(items[at], item)
            target[k] = items
        else:
            target[k] = strategic_merge(target.get(k), v)
    return target


def mutable_view(spec):
    """The pod spec with the fields a live pod may change blanked out."""
    s = copy.deepcopy(spec)
    for k in ('containers', 'initContainers'):
        for c in s.get(k) or []:
            if isinstance(c, dict):
                c.pop('image', None)
    s.pop('activeDeadlineSeconds', None)
    return s


# ---------------------------------------------------------------- store

class Store:
    """Pods, one ReplicaSet per pool, a global resourceVersion and the event history watches read."""

    def __init__(self, history):
        self.cv = threading.Condition()
        self.rv = 1
        self.pods = {}         # (ns, name) -> pod
        self.replicasets = {}  # (ns, name) -> rs
        self.events = []       # (rv, type, old, new)
        self.history = history
        self.oldest = 1        # watches from an RV older than this get 410
        self.closing = False
        self.listeners = []    # called with (type, old, new) under the lock
        self.json_cache = {}   # (ns, name) -> (pod object, its JSON)

    def json_of(self, pod):
        """The JSON text of a stored pod, cached per object (lock held)."""
        key = (pod['metadata']['namespace'], pod['metadata']['name'])
        cached = self.json_cache.get(key)
        if cached is None or cached[0] is not pod:
            cached = (pod, json.dumps(pod))
            self.json_cache[key] = cached
        return cached[1]

    def bump(self):
        self.rv += 1
        return str(self.rv)

    def record(self, etype, old, new):
        rv = int(new['metadata']['resourceVersion'])
        self.events.append((rv, etype, old, new))
        if len(self.events) > self.history:
            drop = len(self.events) - self.history
            self.oldest = self.events[drop][0] - 1
            del self.events[:drop]
        for fn in self.listeners:
            fn(etype, old, new)
        self.cv.notify_all()

    def compact(self):
        with self.cv:
            self.oldest = self.rv
            self.events.clear()

    def write(self, key, new, etype='MODIFIED'):
        """Stores new (already modified copy) under key, bumping the RV; lock held by caller."""
        old = self.pods.get(key)
        new['metadata']['resourceVersion'] = self.bump()
        if etype == 'DELETED':
            self.pods.pop(key, None)
            self.json_cache.pop(key, None)
        else:
            self.pods[key] = new
        self.record(etype, copy.deepcopy(old) if old else None, copy.deepcopy(new))
        return new


# ---------------------------------------------------------------- the pod runtime (kubelet)

def pdeathsig():
    try:
        ctypes.CDLL('libc.so.6', use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    os.setsid()


def free_port():
    """A free port below the kernel's ephemeral range, so that no outgoing connection can take it
    between now and the moment the pod's server binds it."""
    low = 32768
    try:
        with open('/proc/sys/net/ipv4/ip_local_port_range') as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError):
        pass
    for _ in range(1000):
        port = random.randrange(max(1024, low - 12000), low)
        with socket.socket() as s:
            try:
                s.bind(('127.0.0.1', port))
                return port
            except OSError:
                continue
    raise ApiError(500, 'InternalError', 'no free port for a pod')


def image_digest(image):
    return 'sha256:' + hashlib.sha256(image.encode()).hexdigest()


class Kubelet:
    """Runs each pod's runtime container as a real agentix-server and reports its status."""

    def __init__(self, fake):
        self.fake = fake
        self.procs = {}  # (ns, name) -> Popen
        self.lock = threading.Lock()
        self.spawn_queue = queue.Queue()
        threading.Thread(target=self.spawner, daemon=True).start()
        threading.Thread(target=self.watch_exits, daemon=True).start()

    def watch_exits(self):
        """restartPolicy Always: a runtime that exits by itself (its expiry passed, a crash) is
        reported terminated and started again, with restartCount + 1, as kubelet does."""
        while not self.fake.store.closing:
            time.sleep(0.2)
            with self.lock:
                gone = [k for k, p in self.procs.items() if p.poll() is not None]
                for k in gone:
                    self.procs.pop(k, None)
            for key in gone:
                with self.fake.store.cv:
                    pod = self.fake.store.pods.get(key)
                    if not pod or pod['metadata'].get('deletionTimestamp'):
                        continue
                    image = pod['spec']['containers'][0]['image']
                    restarts = (pod.get('status', {}).get('containerStatuses') or [{}])[0].get('restartCount', 0)
                self.fake.note_restart(key)
                self.fake.set_status(key, None, ready=False)
                threading.Thread(target=self.run_container, args=(key, image, restarts + 1),
                                 daemon=True).start()

    FIELD_REFS = {'metadata.name': 'name', 'metadata.namespace': 'namespace', 'metadata.uid': 'uid'}

    def container_env(self, pod):
        """What a kubelet gives the container: the service's address, the pod's token and CA
        (paths the server is told, where a cluster mounts them at the service-account folder),
        then the spec's env with `value` or a downward-API fieldRef."""
        fake = self.fake
        env = {k: v for k, v in os.environ.items()
               if not k.startswith('AGENTIX_') and not k.startswith('KUBERNETES_')}
        md = pod['metadata']
        env.update({'KUBERNETES_SERVICE_HOST': '127.0.0.1', 'KUBERNETES_SERVICE_PORT': str(fake.port),
                    'AGENTIX_K8S_TOKEN_FILE': fake.pod_token_path(md['uid'])})
        if fake.args.tls_dir:
            env['AGENTIX_K8S_CA_FILE'] = os.path.join(fake.args.tls_dir, 'ca.crt')
        c = pod['spec']['containers'][0]
        for e in c.get('env') or []:
            if not isinstance(e, dict):
                continue
            if 'value' in e:
                env[e['name']] = str(e['value'])
            ref = ((e.get('valueFrom') or {}).get('fieldRef') or {}).get('fieldPath')
            if ref in self.FIELD_REFS:
                env[e['name']] = md[self.FIELD_REFS[ref]]
        port = c['ports'][0]['containerPort']
        env.update({'AGENTIX_BIND_HOST': '127.0.0.1', 'AGENTIX_BIND_PORT': str(port),
                    'AGENTIX_MODULE_PATH': fake.args.module_path})
        return env

    def start(self, key, pod):
        """Starts the pod's process from the spawner thread: PDEATHSIG fires when the *thread*
        that forked the child ends, so children come from one thread that lives as long as we do."""
        if self.fake.store.closing:
            return None
        job = {'pod': pod, 'done': threading.Event(), 'proc': None}
        self.spawn_queue.put(job)
        job['done'].wait(30)
        p = job['proc']
        if p is not None:
            with self.lock:
                self.procs[key] = p
        return p

    def spawner(self):
        args = self.fake.args
        while True:
            job = self.spawn_queue.get()
            try:
                log = open(args.pod_log, 'ab') if args.pod_log else subprocess.DEVNULL
                job['proc'] = subprocess.Popen([args.server], env=self.container_env(job['pod']),
                                               stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                               preexec_fn=pdeathsig, close_fds=True)
                if args.pod_log:
                    log.close()
            except OSError as e:
                sys.stderr.write('fake_k8s: cannot start %s: %s\n' % (args.server, e))
            job['done'].set()

    def stop(self, key):
        with self.lock:
            p = self.procs.pop(key, None)
        if not p:
            return
        for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue

    def stop_all(self):
        with self.lock:
            keys = list(self.procs)
        for k in keys:
            self.stop(k)

    def healthy(self, pod, proc, deadline):
        port = pod['spec']['containers'][0]['ports'][0]['containerPort']
        while time.time() < deadline and not self.fake.store.closing:
            if proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen('http://127.0.0.1:%d/health' % port, timeout=1) as r:
                    if r.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.01)
        return False

    def run_container(self, key, image, restarts):
        """Starts the container for image and reports it; returns when Ready or failed."""
        fake = self.fake
        cfg = fake.config
        with fake.store.cv:
            pod = fake.store.pods.get(key)
            if not pod:
                return
            pod = copy.deepcopy(pod)
        name = pod['spec']['containers'][0]['name']
        base = {'name': name, 'image': image, 'imageID': '', 'restartCount': restarts,
                'ready': False, 'started': False}
        if image in cfg['fail_images']:
            fake.set_status(key, dict(base, state={'waiting': {
                'reason': 'ErrImagePull',
                'message': 'rpc error: pulling image "%s": not found' % image}}), ready=False)
            return
        proc = self.start(key, pod)
        if proc is None:
            return
        cid = 'containerd://' + uuid.uuid4().hex
        running = dict(base, imageID='docker-pullable://%s@%s' % (image.split(':')[0], image_digest(image)),
                       containerID=cid, started=True,
                       state={'running': {'startedAt': now_rfc3339()}})
        if image in cfg['crash_images']:
            self.stop(key)
            fake.set_status(key, dict(running, started=False, restartCount=restarts + 1,
                                      state={'waiting': {'reason': 'CrashLoopBackOff',
                                                         'message': 'back-off restarting failed container'}},
                                      lastState={'terminated': {'exitCode': 1, 'reason': 'Error'}}),
                            ready=False)
            return
        if not self.healthy(pod, proc, time.time() + 30):
            self.stop(key)
            fake.set_status(key, dict(running, state={'terminated': {'exitCode': 1, 'reason': 'Error'}}),
                            ready=False)
            return
        time.sleep(cfg['ready_delay_ms'] / 1000.0)
        while not fake.ready_gate.wait(1):  # held by the test (hold_ready); bounded by shutdown
            if fake.store.closing:
                return
        fake.set_status(key, dict(running, ready=True), ready=True)

    def pod_added(self, key):
        threading.Thread(target=self._added, args=(key,), daemon=True).start()

    def _added(self, key):
        with self.fake.store.cv:
            pod = self.fake.store.pods.get(key)
            image = pod and pod['spec']['containers'][0]['image']
        if image:
            self.run_container(key, image, 0)

    def image_changed(self, key, image):
        threading.Thread(target=self._swap, args=(key, image), daemon=True).start()

    def _swap(self, key, image):
        time.sleep(self.fake.config['swap_delay_ms'] / 1000.0)
        with self.fake.store.cv:
            pod = self.fake.store.pods.get(key)
            if not pod or pod['spec']['containers'][0]['image'] != image:
                return
            restarts = (pod.get('status', {}).get('containerStatuses') or [{}])[0].get('restartCount', 0)
        self.stop(key)
        self.fake.set_status(key, None, ready=False)
        self.run_container(key, image, restarts + 1)


# ---------------------------------------------------------------- the fake API

class Fake:
    def __init__(self, args):
        self.args = args
        self.store = Store(args.history)
        self.kubelet = Kubelet(self)
        self.config = {'swap_delay_ms': args.swap_delay_ms, 'ready_delay_ms': args.ready_delay_ms,
                       'fail_images': set(), 'crash_images': set()}
        self.faults = []  # {method, path_re, status, count, retry_after}
        self.ready_gate = threading.Event()  # cleared while the test holds readiness
        self.ready_gate.set()
        self.stats = {'requests': 0, 'by_verb': {}, 'double_claims': 0, 'claims': 0, 'restarts': 0,
                      'pod_self_deletes': 0, 'pod_token_refused': 0}
        self.stats_lock = threading.Lock()
        self.store.listeners.append(self.on_event)
        self.port = 0  # set once listening: the pods' KUBERNETES_SERVICE_PORT
        self.sa_dir = os.path.join(os.path.dirname(os.path.abspath(args.port_file)), 'sa')
        self.pod_tokens = {}  # token -> (ns, name, uid): bound to a pod object, gone with it

    # -- pod-bound service-account tokens
    def pod_token_path(self, uid):
        return os.path.join(self.sa_dir, uid, 'token')

    def issue_pod_token(self, ns, name, uid):
        """Lock held. A fresh random token for this pod object, written where its container reads it."""
        tok = 'pod.' + base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip('=')
        path = self.pod_token_path(uid)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write(tok)
        self.pod_tokens[tok] = (ns, name, uid)

    def pod_of_token(self, tok):
        """(ns, name, uid) of the live pod a token is bound to; None for another token.
        A bound token of a pod that no longer exists is refused (ApiError 401), as in a cluster."""
        with self.store.cv:
            who = self.pod_tokens.get(tok)
            if who is None:
                return None
            pod = self.store.pods.get(who[:2])
            if not pod or pod['metadata']['uid'] != who[2]:
                raise ApiError(401, 'Unauthorized', 'Unauthorized')
            return who

    def note_restart(self, key):
        with self.stats_lock:
            self.stats['restarts'] += 1

    # -- pods
    def new_pod(self, ns, template, owner=None, generate='pod-'):
        pod = copy.deepcopy(template)
        md = pod.setdefault('metadata', {})
        name = md.get('name') or generate + uuid.uuid4().hex[:10]
        md.update({'name': name, 'namespace': ns, 'uid': str(uuid.uuid4()),
                   'creationTimestamp': now_rfc3339(), 'generation': 1})
        md.setdefault('labels', {})
        if owner:
            md['generateName'] = generate
            md['ownerReferences'] = [{'apiVersion': 'apps/v1', 'kind': 'ReplicaSet',
                                      'name': owner['metadata']['name'],
                                      'uid': owner['metadata']['uid'], 'controller': True,
                                      'blockOwnerDeletion': True}]
        pod['apiVersion'], pod['kind'] = 'v1', 'Pod'
        spec = pod.setdefault('spec', {})
        if not spec.get('containers'):
            raise ApiError(422, 'Invalid', 'Pod "%s" is invalid: spec.containers: Required value' % name, name)
        # Admission of the fake: the pod's own port stands in for the pod's own IP.
        c = spec['containers'][0]
        c['ports'] = [{'name': 'runtime', 'containerPort': free_port(), 'protocol': 'TCP'}]
        spec.setdefault('nodeName', 'fake-node')
        spec.setdefault('restartPolicy', 'Always')
        spec.setdefault('terminationGracePeriodSeconds', 30)
        pod['status'] = {'phase': 'Pending', 'conditions': [
            {'type': 'PodScheduled', 'status': 'True'}, {'type': 'Ready', 'status': 'False'}],
            'qosClass': 'BestEffort'}
        key = (ns, name)
        if key in self.store.pods:
            raise ApiError(409, 'AlreadyExists', 'pods "%s" already exists' % name, name)
        self.issue_pod_token(ns, name, md['uid'])
        self.store.write(key, pod, 'ADDED')
        self.kubelet.pod_added(key)
        return pod

    def set_status(self, key, cstatus, ready):
        with self.store.cv:
            pod = self.store.pods.get(key)
            if not pod or pod['metadata'].get('deletionTimestamp'):
                return
            pod = copy.deepcopy(pod)
            st = pod['status']
            if cstatus is not None:
                st['containerStatuses'] = [cstatus]
                st['phase'] = 'Running'
                st['podIP'] = '127.0.0.1'
                st['podIPs'] = [{'ip': '127.0.0.1'}]
                st['hostIP'] = '127.0.0.1'
                st.setdefault('startTime', now_rfc3339())
            elif st.get('containerStatuses'):
                st['containerStatuses'][0]['ready'] = False
            for c in st['conditions']:
                if c['type'] in ('Ready', 'ContainersReady'):
                    c['status'] = 'True' if ready else 'False'
            if not any(c['type'] == 'ContainersReady' for c in st['conditions']):
                st['conditions'].append({'type': 'ContainersReady', 'status': 'True' if ready else 'False'})
            st['observedGeneration'] = pod['metadata'].get('generation', 1)
            self.store.write(key, pod)

    def delete_pod(self, key, grace, uid=None, rv=None):
        """Lock held. Graceful: deletionTimestamp now, DELETED after the grace; 0: at once."""
        pod = self.store.pods.get(key)
        if not pod:
            raise ApiError(404, 'NotFound', 'pods "%s" not found' % key[1], key[1])
        if uid is not None and uid != pod['metadata']['uid']:
            raise ApiError(409, 'Conflict', 'Precondition failed: UID in precondition: %s, UID in '
                           'object meta: %s' % (uid, pod['metadata']['uid']), key[1])
        if rv is not None and rv != pod['metadata']['resourceVersion']:
            raise ApiError(409, 'Conflict', 'Precondition failed: ResourceVersion in precondition: '
                           '%s, ResourceVersion in object meta: %s' % (rv, pod['metadata']['resourceVersion']), key[1])
        if grace is None:
            grace = pod['spec'].get('terminationGracePeriodSeconds', 30)
        grace = min(int(grace), self.args.max_grace)
        if grace <= 0 or pod['status'].get('phase') == 'Pending' and not pod['status'].get('podIP'):
            gone = copy.deepcopy(pod)
            gone['metadata'].setdefault('deletionTimestamp', now_rfc3339())
            gone['metadata']['deletionGracePeriodSeconds'] = 0
            self.store.write(key, gone, 'DELETED')
            threading.Thread(target=self.kubelet.stop, args=(key,), daemon=True).start()
            return gone
        if not pod['metadata'].get('deletionTimestamp'):
            pod = copy.deepcopy(pod)
            pod['metadata']['deletionTimestamp'] = now_rfc3339()
            pod['metadata']['deletionGracePeriodSeconds'] = grace
            self.store.write(key, pod)
            threading.Thread(target=self._finish_delete, args=(key, grace), daemon=True).start()
        return pod

    def _finish_delete(self, key, grace):
        self.kubelet.stop(key)
        deadline = time.time() + grace
        with self.store.cv:
            while time.time() < deadline and not self.store.closing and key in self.store.pods:
                self.store.cv.wait(0.05)
                break  # the process is already stopped; kubelet reports at once
            pod = self.store.pods.get(key)
            if pod:
                self.store.write(key, copy.deepcopy(pod), 'DELETED')

    # -- events → kubelet and ReplicaSet controller (under the store lock)
    def on_event(self, etype, old, new):
        if etype == 'MODIFIED' and old:
            oi = old['spec']['containers'][0].get('image')
            ni = new['spec']['containers'][0].get('image')
            if oi != ni and not new['metadata'].get('deletionTimestamp'):
                self.kubelet.image_changed((new['metadata']['namespace'], new['metadata']['name']), ni)
            ol, nl = old['metadata'].get('labels', {}), new['metadata'].get('labels', {})
            if ol.get(self.args.state_label) == 'claimed' and nl.get(self.args.state_label) == 'claimed' \
                    and ol.get(self.args.claim_label) != nl.get(self.args.claim_label):
                with self.stats_lock:
                    self.stats['double_claims'] += 1
            if ol.get(self.args.state_label) != 'claimed' and nl.get(self.args.state_label) == 'claimed':
                with self.stats_lock:
                    self.stats['claims'] += 1

    def rs_controller(self):
        """Releases pods that left a ReplicaSet's selector and keeps `replicas` matching pods."""
        store = self.store
        with store.cv:
            while not store.closing:
                for (ns, _), rs in list(store.replicasets.items()):
                    sel = [(k, '=', [v]) for k, v in rs['spec']['selector']['matchLabels'].items()]
                    uid = rs['metadata']['uid']
                    live = 0
                    for key, pod in list(store.pods.items()):
                        refs = pod['metadata'].get('ownerReferences') or []
                        owned = any(r.get('uid') == uid for r in refs)
                        matches = key[0] == ns and labels_match(sel, pod['metadata'].get('labels', {}))
                        if owned and not matches:
                            # ReleasePod: strategic patch deleting our ownerReference
                            p = copy.deepcopy(pod)
                            p['metadata']['ownerReferences'] = [r for r in refs if r.get('uid') != uid]
                            store.write(key, p)
                        elif owned and not pod['metadata'].get('deletionTimestamp'):
                            live += 1
                    for _ in range(rs['spec'].get('replicas', 1) - live):
                        self.new_pod(ns, rs['spec']['template'], owner=rs,
                                     generate=rs['metadata']['name'] + '-')
                store.cv.wait(0.05)

    def add_replicaset(self, rs):
        ns = rs.get('metadata', {}).get('namespace') or self.args.namespace
        rs['metadata'].update({'namespace': ns, 'uid': str(uuid.uuid4()),
                               'creationTimestamp': now_rfc3339()})
        with self.store.cv:
            rs['metadata']['resourceVersion'] = self.store.bump()
            self.store.replicasets[(ns, rs['metadata']['name'])] = rs
            self.store.cv.notify_all()


# ---------------------------------------------------------------- HTTP

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'fake-kube-apiserver'

    def log_message(self, fmt, *a):
        if self.server.fake.args.verbose:
            sys.stderr.write('fake_k8s: ' + (fmt % a) + '\n')

    # -- plumbing
    def send_json(self, code, obj, extra=None):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_raw(self, code, body):
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get('Content-Length') or 0)
        if n > MAX_BODY:
            raise ApiError(413, 'RequestEntityTooLarge', 'request body too large')
        raw = self.rfile.read(n) if n and not self._body_read else b''
        self._body_read = True
        return raw

    def body_json(self):
        raw = self.read_body()
        try:
            return json.loads(raw or b'null')
        except ValueError:
            raise ApiError(400, 'BadRequest', 'request body is not JSON')

    def authorized(self):
        args = self.server.fake.args
        auth = self.headers.get('Authorization', '')
        self.pod_identity = None
        if auth.startswith('Bearer '):
            self.pod_identity = self.server.fake.pod_of_token(auth[7:])
            if self.pod_identity:
                return True
        if not args.token and not args.tls_dir:
            return True
        if args.token and auth == 'Bearer ' + args.token:
            return True
        if args.token_file:
            try:
                with open(args.token_file) as f:
                    if auth == 'Bearer ' + f.read().strip():
                        return True
            except OSError:
                pass
        cert = getattr(self.connection, 'getpeercert', lambda: None)()
        return bool(cert)

    def dispatch(self, method):
        fake = self.server.fake
        self._body_read = False
        url = urllib.parse.urlsplit(self.path)
        if not url.path.startswith('/fake/'):  # the test hooks are not API traffic
            with fake.stats_lock:
                fake.stats['requests'] += 1
                fake.stats['by_verb'][method] = fake.stats['by_verb'].get(method, 0) + 1
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        try:
            if not self.authorized():
                raise ApiError(401, 'Unauthorized', 'Unauthorized')
            if self.pod_identity:
                self.pod_scope(method, url.path)
            if not url.path.startswith('/fake/') and self.fault(method, url.path):
                return
            self.route(method, url.path, q)
        except ApiError as e:
            self.read_rest()
            self.send_json(e.code, e.status())
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True

    def pod_scope(self, method, path):
        """What the pool's Role (delete pods) and ValidatingAdmissionPolicy (request.name must be
        the pod named in the token) leave a pod's own token: DELETE of that very pod."""
        ns, name, _ = self.pod_identity
        m = re.fullmatch(r'/api/v1/namespaces/([^/]+)/pods/([^/:]+)', path)
        if method == 'DELETE' and m and m.group(1) == ns and m.group(2) == name:
            return
        fake = self.server.fake
        with fake.stats_lock:
            fake.stats['pod_token_refused'] += 1
        user = 'system:serviceaccount:%s:agentix-pool' % ns
        if method != 'DELETE' or not m or m.group(1) != ns:
            raise ApiError(403, 'Forbidden', 'pods is forbidden: User "%s" cannot %s resource '
                           '"pods" in API group "" in the namespace "%s"'
                           % (user, method.lower(), m.group(1) if m else ns), m.group(2) if m else None)
        raise ApiError(403, 'Forbidden', 'pods "%s" is forbidden: ValidatingAdmissionPolicy '
                       '\'agentix-pod-self-delete\' denied request: a pod may delete only itself'
                       % m.group(2), m.group(2))

    def read_rest(self):
        try:
            if self.headers.get('Content-Length') and not self._body_read:
                self.rfile.read(int(self.headers['Content-Length']))
        except (OSError, ValueError):
            pass

    def fault(self, method, path):
        fake = self.server.fake
        with fake.stats_lock:
            for f in fake.faults:
                if f['count'] > 0 and f.get('method', method) == method and re.search(f.get('path', ''), path):
                    f['count'] -= 1
                    code = f['status']
                    break
            else:
                return False
        self.read_body()
        extra = {'Retry-After': str(f['retry_after'])} if f.get('retry_after') is not None else None
        reason = {429: 'TooManyRequests', 500: 'InternalError', 503: 'ServiceUnavailable',
                  403: 'Forbidden'}.get(code, 'InternalError')
        self.send_json(code, ApiError(code, reason, 'injected fault %d' % code).status(), extra)
        return True

    def do_GET(self):
        self.dispatch('GET')

    def do_POST(self):
        self.dispatch('POST')

    def do_PATCH(self):
        self.dispatch('PATCH')

    def do_DELETE(self):
        self.dispatch('DELETE')

    def do_PUT(self):
        self.dispatch('PUT')

    # -- routes
    def route(self, method, path, q):
        fake = self.server.fake
        if path.startswith('/fake/'):
            return self.route_fake(method, path)
        if path in ('/version', '/version/'):
            return self.send_json(200, {'major': '1', 'minor': '30', 'gitVersion': 'v1.30.0-fake'})
        m = re.fullmatch(r'/api/v1/namespaces/([^/]+)/pods/([^/:]+)(?::(\d+))?/proxy(/.*)?', path)
        if m:
            return self.proxy(m.group(1), m.group(2), m.group(3), m.group(4) or '/')
        m = re.fullmatch(r'/api/v1(?:/namespaces/([^/]+))?/pods', path)
        if m:
            if method == 'GET':
                return self.list_or_watch(m.group(1), q)
            if method == 'POST' and m.group(1):
                body = self.body_json()
                with fake.store.cv:
                    pod = fake.new_pod(m.group(1), body or {})
                return self.send_json(201, pod)
        m = re.fullmatch(r'/api/v1/namespaces/([^/]+)/pods/([^/:]+)(/status)?', path)
        if m:
            return self.route_pod(method, (m.group(1), m.group(2)), q)
        m = re.fullmatch(r'/apis/apps/v1/namespaces/([^/]+)/replicasets(?:/([^/]+))?', path)
        if m and method == 'GET':
            with fake.store.cv:
                if m.group(2):
                    rs = fake.store.replicasets.get((m.group(1), m.group(2)))
                    if not rs:
                        raise ApiError(404, 'NotFound', 'replicasets.apps "%s" not found' % m.group(2),
                                       m.group(2), 'replicasets')
                    return self.send_json(200, rs)
                items = [r for (ns, _), r in fake.store.replicasets.items() if ns == m.group(1)]
                return self.send_json(200, {'kind': 'ReplicaSetList', 'apiVersion': 'apps/v1',
                                            'metadata': {'resourceVersion': str(fake.store.rv)},
                                            'items': items})
        raise ApiError(404, 'NotFound', 'the server could not find the requested resource')

    def proxy(self, ns, name, port, rest):
        """pods/{name}[:{port}]/proxy/…: the request goes on to the pod with the credentials
        stripped, and both directions are spliced until one side closes (so a WebSocket Upgrade
        passes through, as with the apiserver's UpgradeAwareHandler)."""
        store = self.server.fake.store
        with store.cv:
            pod = store.pods.get((ns, name))
            if not pod or not pod['status'].get('podIP'):
                raise ApiError(404 if not pod else 503, 'NotFound' if not pod else 'ServiceUnavailable',
                               'pods "%s" %s' % (name, 'not found' if not pod else 'has no IP'), name)
            own = pod['spec']['containers'][0]['ports'][0]['containerPort']
        if port and int(port) != 8000 and int(port) != own:
            raise ApiError(503, 'ServiceUnavailable', 'no endpoint on port %s of pod %s' % (port, name))
        body = self.read_body()
        query = urllib.parse.urlsplit(self.path).query
        lines = ['%s %s%s HTTP/1.1' % (self.command, rest, '?' + query if query else '')]
        for k, v in self.headers.items():
            if k.lower() not in ('authorization', 'host'):
                lines.append('%s: %s' % (k, v))
        lines.append('Host: 127.0.0.1:%d' % own)
        try:
            up = socket.create_connection(('127.0.0.1', own), timeout=10)
        except OSError as e:
            raise ApiError(503, 'ServiceUnavailable', 'error dialing pod %s: %s' % (name, e), name)
        self.close_connection = True
        up.sendall(('\r\n'.join(lines) + '\r\n\r\n').encode() + body)
        self.wfile.flush()
        done = threading.Event()

        def pump(src, dst):
            try:
                while not done.is_set():
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
            except OSError:
                pass
            done.set()

        up.settimeout(None)
        t = threading.Thread(target=pump, args=(up, self.connection), daemon=True)
        t.start()
        pump(self.connection, up)
        for sock in (up,):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        t.join(MAX_WATCH_SECONDS)
        up.close()

    def route_fake(self, method, path):
        fake = self.server.fake
        if path == '/fake/stats':
            with fake.stats_lock:
                s = copy.deepcopy(fake.stats)
            with fake.store.cv:
                s['pods'] = [{'name': p['metadata']['name'], 'uid': p['metadata']['uid'],
                              'token_file': fake.pod_token_path(p['metadata']['uid']),
                              'labels': p['metadata'].get('labels', {}),
                              'phase': p['status'].get('phase'),
                              'image': p['spec']['containers'][0].get('image'),
                              'ready': any(c['type'] == 'Ready' and c['status'] == 'True'
                                           for c in p['status'].get('conditions', [])),
                              'terminating': bool(p['metadata'].get('deletionTimestamp')),
                              'restarts': (p['status'].get('containerStatuses') or [{}])[0]
                              .get('restartCount', 0)}
                             for p in fake.store.pods.values()]
                s['processes'] = len(fake.kubelet.procs)
            return self.send_json(200, s)
        body = self.body_json() if method == 'POST' else None
        if path == '/fake/faults' and method == 'POST':
            with fake.stats_lock:
                fake.faults.append({'method': body.get('method', 'GET'), 'path': body.get('path', ''),
                                    'status': int(body['status']), 'count': int(body.get('count', 1)),
                                    'retry_after': body.get('retry_after')})
            return self.send_json(200, {})
        if path == '/fake/config' and method == 'POST':
            for k in ('swap_delay_ms', 'ready_delay_ms'):
                if k in body:
                    fake.config[k] = int(body[k])
            for k in ('fail_images', 'crash_images'):
                if k in body:
                    fake.config[k] = set(body[k])
            if 'hold_ready' in body:
                (fake.ready_gate.clear if body['hold_ready'] else fake.ready_gate.set)()
            return self.send_json(200, {})
        if path == '/fake/compact' and method == 'POST':
            fake.store.compact()
            return self.send_json(200, {})
        raise ApiError(404, 'NotFound', 'no such fake hook')

    def route_pod(self, method, key, q):
        fake = self.server.fake
        store = fake.store
        if method == 'GET':
            with store.cv:
                pod = store.pods.get(key)
                if not pod:
                    raise ApiError(404, 'NotFound', 'pods "%s" not found' % key[1], key[1])
                return self.send_json(200, pod)
        if method == 'PATCH':
            ctype = (self.headers.get('Content-Type') or '').split(';')[0].strip()
            if ctype not in ('application/json-patch+json', 'application/merge-patch+json',
                             'application/strategic-merge-patch+json'):
                self.read_body()
                raise ApiError(415, 'UnsupportedMediaType',
                               'the body of the request was in an unknown format - accepted media '
                               'types include: application/json-patch+json, '
                               'application/merge-patch+json, application/apply-patch+yaml')
            body = self.body_json()
            with store.cv:
                pod = store.pods.get(key)
                if not pod:
                    raise ApiError(404, 'NotFound', 'pods "%s" not found' % key[1], key[1])
                new = self.apply_patch(ctype, copy.deepcopy(pod), body)
                self.validate_update(pod, new)
                if new['spec'] != pod['spec']:
                    new['metadata']['generation'] = pod['metadata'].get('generation', 1) + 1
                new = store.write(key, new)
                return self.send_json(200, new)
        if method == 'DELETE':
            body = self.body_json() or {}
            grace = q.get('gracePeriodSeconds', body.get('gracePeriodSeconds'))
            pre = body.get('preconditions') or {}
            with store.cv:
                pod = fake.delete_pod(key, None if grace is None else int(grace), pre.get('uid'),
                                      pre.get('resourceVersion'))
            if self.pod_identity:
                with fake.stats_lock:
                    fake.stats['pod_self_deletes'] += 1
            return self.send_json(200, pod)
        raise ApiError(405, 'MethodNotAllowed', 'method %s not allowed on pods' % method)

    def apply_patch(self, ctype, doc, body):
        if ctype == 'application/json-patch+json':
            return json_patch(doc, body)
        if not isinstance(body, dict):
            raise ApiError(400, 'BadRequest', 'a merge patch must be an object')
        md = body.get('metadata') or {}
        if 'resourceVersion' in md and md['resourceVersion'] != doc['metadata']['resourceVersion']:
            raise ApiError(409, 'Conflict', 'Operation cannot be fulfilled on pods "%s": the object '
                           'has been modified; please apply your changes to the latest version and '
                           'try again' % doc['metadata']['name'], doc['metadata']['name'])
        if 'uid' in md and md['uid'] != doc['metadata']['uid']:
            raise ApiError(409, 'Conflict', 'Precondition failed: UID in precondition: %s, UID in '
                           'object meta: %s' % (md['uid'], doc['metadata']['uid']), doc['metadata']['name'])
        if ctype == 'application/merge-patch+json':
            return merge_patch(doc, body)
        return strategic_merge(doc, body)

    def validate_update(self, old, new):
        name = old['metadata']['name']
        for f in ('name', 'namespace', 'uid', 'creationTimestamp'):
            if new.get('metadata', {}).get(f) != old['metadata'].get(f):
                raise ApiError(422, 'Invalid', 'Pod "%s" is invalid: metadata.%s: Invalid value: '
                               'field is immutable' % (name, f), name)
        labels = new['metadata'].get('labels') or {}
        for k, v in labels.items():
            if not isinstance(v, str) or len(v) > 63 or not LABEL_VALUE_RE.match(v):
                raise ApiError(422, 'Invalid', 'Pod "%s" is invalid: metadata.labels: Invalid value: '
                               '"%s": a valid label must be 63 characters or less, and begin and end '
                               'with an alphanumeric character' % (name, v), name)
        if not isinstance(new.get('spec'), dict) or not isinstance(new['spec'].get('containers'), list):
            raise ApiError(422, 'Invalid', IMMUTABLE_MSG % name, name)
        if mutable_view(new['spec']) != mutable_view(old['spec']):
            raise ApiError(422, 'Invalid', IMMUTABLE_MSG % name, name)
        new['status'] = old['status']  # the main resource ignores status writes

    # -- list and watch
    def list_or_watch(self, ns, q):
        lsel = parse_label_selector(q.get('labelSelector', ''))
        fsel = parse_field_selector(q.get('fieldSelector', ''))
        store = self.server.fake.store

        def match(p):
            return p is not None and (ns is None or p['metadata']['namespace'] == ns) \
                and labels_match(lsel, p['metadata'].get('labels', {})) and fields_match(fsel, p)

        if q.get('watch', '').lower() in ('1', 'true'):
            return self.watch(match, q)
        limit = int(q.get('limit') or 0)
        start = ''
        with store.cv:
            rv = str(store.rv)
            if q.get('continue'):
                try:
                    tok = json.loads(base64.b64decode(q['continue']))
                    start, rv = tok['start'], tok['rv']
                except (ValueError, KeyError, TypeError):
                    raise ApiError(400, 'BadRequest', 'invalid continue token')
                if int(rv) < store.oldest:
                    raise ApiError(410, 'Expired', 'The provided continue parameter is too old to '
                                   'display a consistent list result.')
            items = sorted((p for p in store.pods.values() if match(p)),
                           key=lambda p: (p['metadata']['namespace'], p['metadata']['name']))
            items = [p for p in items if p['metadata']['name'] > start]
            meta = {'resourceVersion': rv}
            if limit and len(items) > limit:
                items = items[:limit]
                meta['continue'] = base64.b64encode(json.dumps(
                    {'start': items[-1]['metadata']['name'], 'rv': rv}).encode()).decode()
            # Stored pods are replaced, never changed in place, so their cached JSON is current.
            body = '{"kind":"PodList","apiVersion":"v1","metadata":%s,"items":[%s]}' % (
                json.dumps(meta), ','.join(store.json_of(p) for p in items))
        self.send_raw(200, body.encode())

    def chunk(self, obj):
        data = (json.dumps(obj) + '\n').encode()
        self.wfile.write(b'%x\r\n%s\r\n' % (len(data), data))
        self.wfile.flush()

    def watch(self, match, q):
        store = self.server.fake.store
        timeout = min(int(q.get('timeoutSeconds') or 60), MAX_WATCH_SECONDS)
        bookmarks = q.get('allowWatchBookmarks', '').lower() in ('1', 'true')
        deadline = time.time() + timeout
        self.send_response(200)
        self.send_header('Content-Type', 'application/json;stream=watch')
        self.send_header('Transfer-Encoding', 'chunked')
        self.end_headers()
        self.close_connection = True
        start_rv = q.get('resourceVersion')
        with store.cv:
            if not start_rv or start_rv == '0':
                pending = [{'type': 'ADDED', 'object': copy.deepcopy(p)}
                           for p in store.pods.values() if match(p)]
                pos = store.rv
            else:
                pos = int(start_rv)
                pending = []
                if pos < store.oldest:
                    pending = [{'type': 'ERROR', 'object': ApiError(
                        410, 'Expired', 'too old resource version: %d (%d)' % (pos, store.oldest)).status()}]
                    pos = None
        try:
            for ev in pending:
                self.chunk(ev)
            last_sent = time.time()
            while pos is not None:
                with store.cv:
                    while not store.closing and time.time() < deadline \
                            and (not store.events or store.events[-1][0] <= pos):
                        store.cv.wait(max(0.0, min(1.0, deadline - time.time())))
                        if bookmarks and time.time() - last_sent >= 1.0:
                            break
                    if store.closing or time.time() >= deadline:
                        break
                    if pos < store.oldest:
                        out = [{'type': 'ERROR', 'object': ApiError(
                            410, 'Expired', 'too old resource version: %d' % pos).status()}]
                        pos = None
                    else:
                        out = []
                        first = bisect.bisect_right(store.events, pos, key=lambda e: e[0])
                        for rv, etype, old, new in store.events[first:]:
                            was, now = match(old), match(new) and etype != 'DELETED'
                            if was and now:
                                out.append({'type': 'MODIFIED', 'object': new})
                            elif now:
                                out.append({'type': 'ADDED', 'object': new})
                            elif was:
                                out.append({'type': 'DELETED', 'object': new})
                            pos = rv
                        if not out and bookmarks:
                            out = [{'type': 'BOOKMARK', 'object': {
                                'kind': 'Pod', 'apiVersion': 'v1',
                                'metadata': {'resourceVersion': str(store.rv)}}}]
                            pos = store.rv
                for ev in out:
                    self.chunk(ev)
                last_sent = time.time()
            self.wfile.write(b'0\r\n\r\n')
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, addr, fake, tls):
        self.fake = fake
        self.tls = tls
        super().__init__(addr, Handler)

    def get_request(self):
        sock, addr = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls:  # the handshake itself happens on the connection's own thread
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def finish_request(self, request, client_address):
        if self.tls:
            request.settimeout(60)  # a bound: TLS under valgrind on a loaded machine is slow
            try:
                request.do_handshake()
            except (OSError, ssl.SSLError):
                return
            request.settimeout(None)
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        pass


def load_replicaset(path, args):
    with open(path) as f:
        text = f.read()
    try:
        docs = [json.loads(text)]
    except ValueError:
        import yaml  # python3-yaml (a dependency of python3-kubernetes)
        docs = list(yaml.safe_load_all(text))
    for d in docs:
        if d and d.get('kind') in ('ReplicaSet', 'Deployment'):
            return d
    raise SystemExit('fake_k8s: no ReplicaSet in %s' % path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--port-file', required=True)
    ap.add_argument('--server', required=True, help='agentix-server binary the kubelet runs')
    ap.add_argument('--module-path', required=True)
    ap.add_argument('--replicaset', required=True, help='pool manifest (JSON or YAML)')
    ap.add_argument('--replicas', type=int, help='override the manifest replicas')
    ap.add_argument('--namespace', default='default')
    ap.add_argument('--tls-dir', help='serve HTTPS with ca.crt, server.crt, server.key from here')
    ap.add_argument('--token', help='accepted bearer token')
    ap.add_argument('--token-file', help='a file holding another accepted token (re-read)')
    ap.add_argument('--history', type=int, default=10000)
    ap.add_argument('--swap-delay-ms', type=int, default=50)
    ap.add_argument('--ready-delay-ms', type=int, default=0)
    ap.add_argument('--max-grace', type=int, default=2)
    ap.add_argument('--state-label', default='agentix.dev/state')
    ap.add_argument('--claim-label', default='agentix.dev/claim')
    ap.add_argument('--pod-log')
    ap.add_argument('--verbose', action='store_true')
    args = ap.parse_args()

    fake = Fake(args)
    rs = load_replicaset(args.replicaset, args)
    if args.replicas is not None:
        rs['spec']['replicas'] = args.replicas
    fake.add_replicaset(rs)
    tls = None
    if args.tls_dir:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(os.path.join(args.tls_dir, 'server.crt'), os.path.join(args.tls_dir, 'server.key'))
        tls.load_verify_locations(os.path.join(args.tls_dir, 'ca.crt'))
        tls.verify_mode = ssl.CERT_OPTIONAL
    srv = Server(('127.0.0.1', 0), fake, tls)
    fake.port = srv.server_address[1]
    threading.Thread(target=fake.rs_controller, daemon=True).start()
    threading.Thread(target=srv.serve_forever, daemon=True).start()

    stop = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, lambda *_: stop.set())
    ppid = os.getppid()
    tmp = args.port_file + '.tmp'
    with open(tmp, 'w') as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, args.port_file)
    while not stop.wait(0.2):
        if os.getppid() != ppid:  # our parent (the test) died
            break
    with fake.store.cv:
        fake.store.closing = True
        fake.store.cv.notify_all()
    srv.shutdown()
    fake.kubelet.stop_all()
    srv.server_close()


if __name__ == '__main__':
    main()
