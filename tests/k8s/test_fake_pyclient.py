#!/usr/bin/python3
"""test_fake_pyclient.py — checks tests/fakes/k8s/fake_k8s.py with an independent client, Debian's
python3-kubernetes (22.6): it lists, patches (JSON, merge, strategic merge), watches and deletes
pods over TLS with a bearer token and with a client certificate, and sees the status codes the
reference lists (422 failed test / immutable field, 409 stale resourceVersion and UID, 415, 400,
404, 410 Expired). If the fake disagrees with a real client, this fails, not the backend tests."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

STATE = 'agentix.dev~1state'
POOL_RS = {'apiVersion': 'apps/v1', 'kind': 'ReplicaSet',
           'metadata': {'name': 'agentix-pool-py', 'labels': {'agentix.dev/pool': 'py'}},
           'spec': {'replicas': 2,
                    'selector': {'matchLabels': {'agentix.dev/pool': 'py', 'agentix.dev/state': 'idle'}},
                    'template': {'metadata': {'labels': {'agentix.dev/pool': 'py', 'agentix.dev/state': 'idle'}},
                                 'spec': {'containers': [{'name': 'runtime', 'image': 'python:3.12',
                                                          # as `agentix k8s-pool manifest` without
                                                          # --token-secret: no token, said openly
                                                          'env': [{'name': 'AGENTIX_AUTH', 'value': 'none'}],
                                                          'ports': [{'containerPort': 8000}]}]}}}}


def expect_status(code, fn, *a, **kw):
    try:
        fn(*a, **kw)
    except ApiException as e:
        assert e.status == code, 'expected HTTP %d, got %d: %s' % (code, e.status, e.body)
        return json.loads(e.body) if e.body else {}
    raise AssertionError('expected HTTP %d, got success' % code)


def api_for(host, certs, token=None, cert=False):
    cfg = client.Configuration()
    cfg.host = host
    cfg.ssl_ca_cert = os.path.join(certs, 'ca.crt')
    if token:
        cfg.api_key = {'authorization': 'Bearer ' + token}
    if cert:
        cfg.cert_file = os.path.join(certs, 'client.crt')
        cfg.key_file = os.path.join(certs, 'client.key')
    return client.CoreV1Api(client.ApiClient(cfg))


def wait_idle(v1, n, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        pods = v1.list_namespaced_pod('default', label_selector='agentix.dev/pool=py,agentix.dev/state=idle',
                                      field_selector='status.phase=Running').items
        ready = [p for p in pods if any(c.type == 'Ready' and c.status == 'True' for c in p.status.conditions or [])]
        if len(ready) >= n:
            return ready
        time.sleep(0.1)
    raise AssertionError('pool did not warm up')


def main():
    ap = argparse.ArgumentParser()
    for a in ('--fake', '--make-certs', '--server', '--module-path', '--work'):
        ap.add_argument(a, required=True)
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    certs = os.path.join(args.work, 'certs')
    subprocess.check_call(['sh', args.make_certs, certs])
    rs = os.path.join(args.work, 'pool.json')
    with open(rs, 'w') as f:
        json.dump(POOL_RS, f)
    port_file = os.path.join(args.work, 'port')
    fake = subprocess.Popen([sys.executable, args.fake, '--port-file', port_file, '--server', args.server,
                             '--module-path', args.module_path, '--replicaset', rs, '--token', 'tok',
                             '--tls-dir', certs, '--history', '50'])
    try:
        for _ in range(300):
            if os.path.exists(port_file):
                break
            time.sleep(0.05)
        host = 'https://127.0.0.1:' + open(port_file).read().strip()
        run(host, certs)
    finally:
        fake.terminate()
        fake.wait(30)
    print('fake_k8s agrees with python3-kubernetes')


def run(host, certs):
    v1 = api_for(host, certs, token='tok')
    # Auth: no credentials → 401; a client certificate alone is enough.
    expect_status(401, api_for(host, certs).list_namespaced_pod, 'default')
    v1cert = api_for(host, certs, cert=True)
    assert len(v1cert.list_namespaced_pod('default').items) >= 0

    idle = wait_idle(v1, 2)
    pod = idle[0]
    name, rv0 = pod.metadata.name, int(pod.metadata.resource_version)
    assert pod.status.pod_ip == '127.0.0.1' and pod.metadata.owner_references[0].kind == 'ReplicaSet'

    # Selectors: set-based and malformed.
    got = v1.list_namespaced_pod('default', label_selector='agentix.dev/state in (idle,claimed),!nope').items
    assert any(p.metadata.name == name for p in got)
    expect_status(400, v1.list_namespaced_pod, 'default', label_selector='a in (b')
    expect_status(400, v1.list_namespaced_pod, 'default', field_selector='spec.bogus=1')

    # Paging with limit/continue.
    page = v1.list_namespaced_pod('default', limit=1)
    assert len(page.items) == 1 and page.metadata._continue

    # Watch from the list's version: the claim patch arrives as a DELETED for a selector it left.
    lst = v1.list_namespaced_pod('default', label_selector='agentix.dev/state=idle')
    claim = [{'op': 'test', 'path': '/metadata/labels/' + STATE, 'value': 'idle'},
             {'op': 'replace', 'path': '/metadata/labels/' + STATE, 'value': 'claimed'},
             {'op': 'add', 'path': '/metadata/labels/agentix.dev~1claim', 'value': 'py1'}]
    patched = v1.patch_namespaced_pod(name, 'default', claim)
    assert patched.metadata.labels['agentix.dev/state'] == 'claimed'
    assert int(patched.metadata.resource_version) > rv0
    w = watch.Watch()
    types = []
    for ev in w.stream(v1.list_namespaced_pod, 'default', label_selector='agentix.dev/state=idle',
                       resource_version=lst.metadata.resource_version, timeout_seconds=5):
        if ev['object'].metadata.name == name:
            types.append(ev['type'])
            w.stop()
    assert types == ['DELETED'], types

    # A second claim loses: the test op fails with 422.
    expect_status(422, v1.patch_namespaced_pod, name, 'default', claim)
    # Stale resourceVersion (merge patch) and wrong UID → 409.
    cur = v1.read_namespaced_pod(name, 'default')
    stale = {'metadata': {'resourceVersion': str(rv0), 'labels': {'x': 'y'}}}
    expect_status(409, v1.api_client.call_api, '/api/v1/namespaces/default/pods/' + name, 'PATCH',
                  header_params={'Content-Type': 'application/merge-patch+json', 'Accept': 'application/json'},
                  body=stale, auth_settings=['BearerToken'], response_type='object')
    expect_status(409, v1.api_client.call_api, '/api/v1/namespaces/default/pods/' + name, 'PATCH',
                  header_params={'Content-Type': 'application/merge-patch+json', 'Accept': 'application/json'},
                  body={'metadata': {'uid': 'not-the-uid'}}, auth_settings=['BearerToken'],
                  response_type='object')
    # Unknown patch type → 415; immutable field → 422.
    # (python3-kubernetes refuses to send an unknown content type itself, so urllib does.)
    import ssl
    import urllib.error
    import urllib.request
    req = urllib.request.Request(host + '/api/v1/namespaces/default/pods/' + name, data=b'{}', method='PATCH',
                                 headers={'Content-Type': 'application/x-whatever', 'Authorization': 'Bearer tok'})
    try:
        urllib.request.urlopen(req, context=ssl.create_default_context(cafile=os.path.join(certs, 'ca.crt')))
        raise AssertionError('expected 415')
    except urllib.error.HTTPError as e:
        assert e.code == 415, e.code
    st = expect_status(422, v1.patch_namespaced_pod, name, 'default',
                       [{'op': 'replace', 'path': '/spec/restartPolicy', 'value': 'Never'}])
    assert 'Forbidden' in st.get('message', '') and st.get('reason') == 'Invalid'

    # Strategic merge swaps the image in place: the kubelet restarts with a new containerID.
    old_cid = cur.status.container_statuses[0].container_id
    swapped = v1.patch_namespaced_pod(name, 'default', {'spec': {'containers': [{'name': 'runtime', 'image': 'task:v2'}]}})
    assert swapped.spec.containers[0].image == 'task:v2' and swapped.metadata.generation == 2
    deadline = time.time() + 30
    w = watch.Watch()
    for ev in w.stream(v1.list_namespaced_pod, 'default', field_selector='metadata.name=' + name,
                       resource_version=swapped.metadata.resource_version, timeout_seconds=30):
        cs = (ev['object'].status.container_statuses or [None])[0]
        if cs and cs.container_id != old_cid and cs.ready and cs.image == 'task:v2':
            assert cs.restart_count == 1
            w.stop()
        assert time.time() < deadline, 'no restart seen'

    # The ReplicaSet released the claimed pod and keeps two idle ones.
    assert not v1.read_namespaced_pod(name, 'default').metadata.owner_references
    wait_idle(v1, 2)

    # Graceful deletion: deletionTimestamp first, then gone; UID precondition; 404 afterwards.
    expect_status(409, v1.delete_namespaced_pod, name, 'default',
                  body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid='nope')))
    d = v1.delete_namespaced_pod(name, 'default', grace_period_seconds=1)
    assert d.metadata.deletion_timestamp is not None
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            v1.read_namespaced_pod(name, 'default')
            time.sleep(0.1)
        except ApiException as e:
            assert e.status == 404
            break
    else:
        raise AssertionError('graceful delete did not finish')
    expect_status(404, v1.delete_namespaced_pod, name, 'default')

    # 410 Expired: a watch from a version older than the retained history (compacted now).
    v1.api_client.call_api('/fake/compact', 'POST', body={}, header_params={'Content-Type': 'application/json'},
                           auth_settings=['BearerToken'])
    raw = v1.api_client.call_api('/api/v1/namespaces/default/pods', 'GET',
                                 query_params=[('watch', '1'), ('resourceVersion', '2'), ('timeoutSeconds', '2')],
                                 header_params={'Accept': 'application/json'}, auth_settings=['BearerToken'],
                                 _preload_content=False)[0]
    first = json.loads(raw.data.decode().splitlines()[0])
    assert first['type'] == 'ERROR' and first['object']['code'] == 410, first


if __name__ == '__main__':
    main()
