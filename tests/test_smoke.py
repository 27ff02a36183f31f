from callbacks import selectors


def test_api_key_identifies_its_tenant(new_tenant):
    found = selectors.api_key_lookup(key=new_tenant.api_key)
    assert found is not None and found.tenant == new_tenant.tenant
    assert selectors.api_key_lookup(key=new_tenant.api_key + "x") is None


def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}
