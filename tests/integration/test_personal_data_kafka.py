"""Personal data on the Kafka path: the topic carries person ids, never names or phones.

Real PostgreSQL and a real broker: a link with a responsible person is added over HTTP,
relayed and projected by a worker. Every message in the topic is read back raw: the
person id is there, the name and phone are not. After the person is erased, the view
the worker built shows the erased marker at once (names are resolved when read), and
it still equals a rebuild from the store.
"""

from __future__ import annotations

import time

import pytest
from kafka import KafkaConsumer, TopicPartition

from domain.actor import Role
from domain.persons import ERASED
from tests.integration.api_client import Api
from tests.integration.conftest import PROJECTIONS, KafkaBed, assert_exactly_once, stop_all

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

NAME, PHONE = "欧阳负责人", "13600136006"


def topic_bytes(bed: KafkaBed, at_least: int) -> list[bytes]:
    """Every message (value and headers) of the test's topic, from the beginning."""
    reader = KafkaConsumer(bootstrap_servers=[bed.tansu.address], enable_auto_commit=False)
    found: list[bytes] = []
    try:
        partitions = [TopicPartition(bed.topic, p) for p in reader.partitions_for_topic(bed.topic)]
        reader.assign(partitions)
        reader.seek_to_beginning(*partitions)
        deadline = time.monotonic() + 60
        while len(found) < at_least:
            assert time.monotonic() < deadline, f"{len(found)} of {at_least} messages in the topic"
            for messages in reader.poll(timeout_ms=200).values():
                for message in messages:
                    headers = b"".join(bytes(value) for _, value in message.headers)
                    found.append(bytes(message.value) + b"\n" + headers)
    finally:
        reader.close()
    return found


def test_the_topic_carries_person_ids_and_views_resolve_names_when_read(bed: KafkaBed) -> None:
    api_system = bed.system()
    workers_system = bed.system()
    relay = bed.relay_thread(workers_system)
    workers = bed.worker_threads(workers_system, PROJECTIONS)
    try:
        api = Api(api_system)
        api.principal("secretariat", Role.SECRETARIAT)
        api.principal("auditor", Role.AUDITOR)
        api.post(
            "secretariat",
            "/units",
            {"id": "postal", "name": "邮政", "kind": "department"},
            expect=201,
        )
        api.post("secretariat", "/chains", {"industry": "express", "name": "快递"}, expect=201)
        response = api.client.post(
            "/chains/express/links",
            json={
                "unit": "postal",
                "role": "industry-competent",
                "responsible_person": NAME,
                "phone": PHONE,
                "duties": ["行业监管"],
            },
            headers=api.headers("secretariat"),
        )
        assert response.status_code == 201, response.text
        person = response.json()["responsible_person"]["person_id"]
        position = int(response.headers["X-Tiaokuai-Position"])

        view = api.get("auditor", f"/views/units/postal?after={position}")
        assert view["chain_links"][0]["responsible_person"]["name"] == NAME

        messages = topic_bytes(bed, at_least=api_system.app.head())
        joined = b"\n".join(messages)
        assert person.encode() in joined
        assert NAME.encode() not in joined and PHONE.encode() not in joined

        api.post("secretariat", f"/persons/{person}/erasure", {"reason": "本人申请"})
        # The worker's view shows the erasure without applying anything new.
        view = api.get("auditor", "/views/units/postal")
        assert view["chain_links"][0]["responsible_person"] == {
            "person_id": person,
            "name": ERASED,
            "phone": None,
            "erased": True,
        }
        # Every projection applied everything, exactly once, and equals a rebuild.
        assert_exactly_once(bed, api_system)
        bed.check_alive()
    finally:
        stop_all(*workers, relay)
