"""Provisioning and the device registry, on the real database."""

from __future__ import annotations

import pytest

from gateway import registry
from gateway.accounts import AnonymousBroker
from gateway.service import DeviceAdmin
from homecare.auth import verify_secret
from homecare.contract import DeviceKind
from homecare.errors import Conflict, Invalid, NotFound
from homecare.shards import Shards
from tests.support import unique

ONE_SHARD = Shards.parse("", "", "mqtt://127.0.0.1:1883")  # `main`: no broker is used here


def test_provision_returns_the_secret_once_and_stores_only_a_salted_hash(pool, resident_id):
    device_id = unique("bed")
    with pool.connection() as conn:
        device, secret = registry.provision(conn, device_id, DeviceKind.BED, resident_id)
    assert device.id == device_id and device.kind is DeviceKind.BED
    assert device.state == "never_seen" and device.online is False and device.revoked_at is None
    assert len(secret) >= 32
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT * FROM gateway.devices WHERE id = %s", (device_id,)
        ).fetchone()
        again = registry.get(conn, device_id)
    assert secret not in str(row.values())
    assert row["secret_hash"].startswith("pbkdf2_sha256$")
    assert verify_secret(secret, row["secret_hash"]) and not verify_secret(secret + "x", row["secret_hash"])
    assert "secret" not in again.model_dump() and "secret_hash" not in again.model_dump()


def test_two_devices_get_different_secrets_and_salts(pool, resident_id):
    with pool.connection() as conn:
        _, one = registry.provision(conn, unique("btn"), DeviceKind.BUTTON, resident_id)
        _, two = registry.provision(conn, unique("btn"), DeviceKind.BUTTON, resident_id)
    assert one != two


def test_provision_refuses_a_taken_id_an_unknown_resident_and_a_bad_id(pool, resident_id):
    device_id = unique("btn")
    with pool.connection() as conn:
        registry.provision(conn, device_id, DeviceKind.BUTTON, resident_id)
    with pool.connection() as conn, pytest.raises(Conflict):
        registry.provision(conn, device_id, DeviceKind.BED, resident_id)
    with pool.connection() as conn, pytest.raises(NotFound):
        registry.provision(conn, unique("btn"), DeviceKind.BUTTON, "res-nobody")
    for bad in ("BED-1", "ab", "-bed-0001", "bed_0001", "bed/0001"):
        with pool.connection() as conn, pytest.raises(Invalid, match="id"):
            registry.provision(conn, bad, DeviceKind.BED, resident_id)


def test_devices_of_lists_active_devices_and_revocation_removes_them(pool, resident_id):
    admin = DeviceAdmin(AnonymousBroker(), shards=ONE_SHARD)
    with pool.connection() as conn:
        bed, _ = admin.provision(conn, unique("bed"), DeviceKind.BED, resident_id)
        button, _ = admin.provision(conn, unique("btn"), DeviceKind.BUTTON, resident_id)
    with pool.connection() as conn:
        assert {d.id for d in registry.devices_of(conn, resident_id)} == {bed.id, button.id}
        revoked = admin.revoke(conn, button.id)
    assert revoked.revoked_at is not None and revoked.online is False
    with pool.connection() as conn:
        assert [d.id for d in registry.devices_of(conn, resident_id)] == [bed.id]
        assert registry.get(conn, button.id).revoked_at is not None  # still readable
        assert registry.lookup(conn, button.id) is None
        assert registry.lookup(conn, bed.id) == registry.DeviceRef(bed.id, DeviceKind.BED, resident_id)
        with pytest.raises(NotFound):
            registry.get(conn, unique("bed"))
        with pytest.raises(NotFound):
            registry.revoke(conn, unique("bed"))


def test_the_anonymous_broker_warns_once_that_identity_is_not_enforced(caplog):
    accounts = AnonymousBroker()
    with caplog.at_level("WARNING", logger="gateway.accounts"):
        accounts.add_device("bed-0001", "secret")
        accounts.add_device("bed-0002", "secret")
        accounts.remove_device("bed-0001")
    warnings = [r for r in caplog.records if r.name == "gateway.accounts"]
    assert len(warnings) == 1 and "identity" in warnings[0].getMessage()


def test_the_edge_cache_does_not_keep_a_device_revoked_by_a_pending_transaction(pool, resident_id):
    from gateway.cache import DeviceCache

    cache = DeviceCache(pool)
    admin = DeviceAdmin(AnonymousBroker(), cache, ONE_SHARD)
    with pool.connection() as conn:
        device, _ = admin.provision(conn, unique("bed"), DeviceKind.BED, resident_id)
    assert cache.get(device.id) == registry.DeviceRef(device.id, DeviceKind.BED, resident_id)
    with pool.connection() as conn:
        admin.revoke(conn, device.id)
        # not committed yet: the edge still sees the device, but must not cache that view
        assert cache.get(device.id) is not None
    assert cache.get(device.id) is None
    assert cache.get(unique("bed")) is None


def test_devices_cached_together_expire_spread_over_the_second_half_of_the_ttl(pool):
    from gateway.cache import DeviceCache

    now = [0.0]
    cache = DeviceCache(pool, ttl_s=600, clock=lambda: now[0])
    # Not in the database: a cached answer is told apart from a lookup (which finds nothing).
    refs = [registry.DeviceRef(unique("bed"), DeviceKind.BED, "res-x") for _ in range(200)]
    cache.remember(refs)
    now[0] = 299.0
    assert all(cache.get(r.id) == r for r in refs)
    now[0] = 450.0
    cached = [r for r in refs if cache.get(r.id) is not None]
    assert 0 < len(cached) < len(refs)
    now[0] = 601.0
    assert all(cache.get(r.id) is None for r in refs)


def test_a_device_invalidated_a_moment_ago_is_not_remembered_from_an_older_read(pool):
    from gateway.cache import DeviceCache

    cache = DeviceCache(pool)
    ref = registry.DeviceRef(unique("bed"), DeviceKind.BED, "res-x")
    cache.invalidate(ref.id)  # revoked meanwhile: a batch read before the commit must not stick
    cache.remember([ref])
    assert cache.get(ref.id) is None
