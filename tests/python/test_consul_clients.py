"""Real Python Consul clients (python-consul2, py-consul) against a real connectd agent.

Both distributions install a module named `consul`; scripts/python-client-tests runs this file
once per client, each in its own virtualenv. CONNECTD_BIN names the binary under test.
"""
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.request

import consul
import pytest

BIN = os.environ.get("CONNECTD_BIN", ".build/debug/connectd")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def agent():
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        config = os.path.join(data_dir, "web.json")
        with open(config, "w") as f:
            json.dump({"service": {"name": "web", "port": 8080, "connect": {"proxy": {}}}}, f)
        proc = subprocess.Popen(
            [BIN, "agent", "-data-dir", os.path.join(data_dir, "data"), "-config-file", config, "-http-port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/agent/self", timeout=1)
                break
            except OSError:
                assert proc.poll() is None, "agent exited early"
                time.sleep(0.1)
        yield port
        proc.terminate()
        assert proc.wait(timeout=20) == 0


def test_agent_self(agent):
    c = consul.Consul(host="127.0.0.1", port=agent)
    me = c.agent.self()
    assert me["Config"]["Datacenter"] == "dc1"
    assert me["Config"]["Server"] is False


def test_list_register_deregister(agent):
    c = consul.Consul(host="127.0.0.1", port=agent)
    services = c.agent.services()
    assert services["web"]["Connect"]["Proxy"]["ExecMode"] == "daemon"
    assert services["web-proxy"]["Kind"] == "connect-proxy"

    assert c.agent.service.register("api", service_id="api-1", port=9000, tags=["v1"], meta={"team": "x"}) is True
    services = c.agent.services()
    assert services["api-1"]["Service"] == "api"
    assert services["api-1"]["Port"] == 9000
    assert services["api-1"]["Tags"] == ["v1"]
    assert services["api-1"]["Meta"] == {"team": "x"}

    assert c.agent.service.register("api", service_id="api-1", port=9001, enable_tag_override=True) is True
    assert c.agent.services()["api-1"]["Port"] == 9001
    assert c.agent.services()["api-1"]["EnableTagOverride"] is True

    assert c.agent.service.deregister("api-1") is True
    assert "api-1" not in c.agent.services()


def test_managed_proxy_registration_is_refused_by_default(agent):
    c = consul.Consul(host="127.0.0.1", port=agent)
    body = json.dumps({"Name": "db", "Port": 5432, "Connect": {"Proxy": {}}}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{agent}/v1/agent/service/register", data=body, method="PUT")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req)
    assert err.value.code == 500
    assert err.value.read().decode() == "Bad request: Managed proxy registration via the API is disallowed."
    assert "db" not in c.agent.services()


def ca_api(c):
    """py-consul: agent.connect.ca.roots()/leaf(); python-consul2: root_certificates()/leaf_certificates()."""
    connect = c.agent.connect
    if hasattr(connect, "ca"):
        return connect.ca.roots, connect.ca.leaf
    # python-consul2's leaf_certificates() requests /agent/connect/ca/leaf/... without /v1 (a client
    # bug: real Consul answers that with 404 too), so only its roots call is usable.
    return connect.root_certificates, None


def test_ca_roots_and_leaf(agent):
    c = consul.Consul(host="127.0.0.1", port=agent)
    roots, leaf = ca_api(c)
    body = roots()
    assert body["TrustDomain"].endswith(".consul")
    active = [r for r in body["Roots"] if r["Active"]]
    assert len(active) == 1 and active[0]["ID"] == body["ActiveRootID"]
    assert active[0]["RootCert"].startswith("-----BEGIN CERTIFICATE-----")
    if leaf is None:
        return
    cert = leaf("web")
    assert cert["Service"] == "web"
    assert cert["ServiceURI"] == "spiffe://%s/ns/default/dc/dc1/svc/web" % body["TrustDomain"]
    assert cert["PrivateKeyPEM"].startswith("-----BEGIN EC PRIVATE KEY-----")
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "root.pem"), "w") as f:
            f.write(active[0]["RootCert"])
        with open(os.path.join(d, "leaf.pem"), "w") as f:
            f.write(cert["CertPEM"])
        out = subprocess.run(["openssl", "verify", "-x509_strict", "-purpose", "sslclient", "-CAfile", "root.pem", "leaf.pem"],
                             cwd=d, capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
    assert leaf("web") == cert, "cached"


def test_authorize(agent):
    c = consul.Consul(host="127.0.0.1", port=agent)
    roots = c.agent.connect.ca.roots() if hasattr(c.agent.connect, "ca") else c.agent.connect.root_certificates()
    uri = "spiffe://%s/ns/default/dc/dc1/svc/db" % roots["TrustDomain"]
    if hasattr(c.agent.connect, "ca"):
        # py-consul sends PUT, which real Consul 1.5.3 refuses with 405 too.
        with pytest.raises(consul.ConsulException) as err:
            c.agent.connect.authorize("web", uri, "04")
        assert "405" in str(err.value) and "method PUT not allowed" in str(err.value)
        return
    result = c.agent.connect.authorize("web", uri, "04")
    assert result == {"Authorized": True, "Reason": "ACLs disabled, access is allowed by default"}


def test_catalog_services_and_health_connect(agent):
    c = consul.Consul(host="127.0.0.1", port=agent)
    index, services = c.catalog.services()
    assert int(index) >= 1
    assert "web" in services and "web-proxy" in services
    if hasattr(c.health, "connect"):
        index, nodes = c.health.connect("web")
        assert [n["Service"]["ID"] for n in nodes] == ["web-proxy"]
        assert nodes[0]["Checks"][0]["Name"] == "Connect Proxy Listening"
        # A blocking call with the same index returns after the wait with the same index.
        started = time.time()
        again, _ = c.health.connect("web", index=index, wait="1s")
        assert time.time() - started >= 0.9
        assert again == index or int(again) > int(index)


def test_checks_through_the_client(agent):
    c = consul.Consul(host="127.0.0.1", port=agent)
    assert c.agent.service.register("billing", service_id="billing-1", port=9100, check=consul.Check.ttl("30s"))
    checks = c.agent.checks()
    assert checks["service:billing-1"]["Status"] == "critical"
    assert checks["service:billing-1"]["ServiceName"] == "billing"
    index, passing = c.health.service("billing", passing=True)
    assert passing == []
    assert c.agent.check.ttl_pass("service:billing-1", notes="all good")
    assert c.agent.checks()["service:billing-1"]["Output"] == "all good"
    index, listed = c.health.checks("billing")
    assert [check["CheckID"] for check in listed] == ["service:billing-1"]
    assert listed[0]["Status"] == "passing"
    index, passing = c.health.service("billing", passing=True)
    assert [entry["Service"]["ID"] for entry in passing] == ["billing-1"]
    assert c.agent.check.ttl_fail("service:billing-1", notes="down")
    assert c.health.service("billing", passing=True)[1] == []
    assert c.agent.service.deregister("billing-1")
