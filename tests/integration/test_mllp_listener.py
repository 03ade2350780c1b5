"""The MLLP listener over real sockets, on SQLite and PostgreSQL: partial frames, two messages
in one read, a client that leaves mid-frame, garbage between frames, several clients, the
bounds, and a completed visit through to its survey and write-back."""

from __future__ import annotations

import socket
import threading
import time

import hl7
import pytest
from sqlalchemy import func, select

from service import practices
from service.handlers.hl7v2 import mllp_callbacks
from service.intake.mllp import END, START, MllpServer, frame, start
from service.persistence.tables import surveys, webhook_events
from service.web import create_app
from support import PAYLOADS, practice_document

TOKEN = "hl7-channel-token-0123456789"
HIGH = {"bond": 9, "goals": 9, "approach": 9, "overall": 10, "tension": False}


@pytest.fixture
def stored_practice(services):
    document = practices.validate_document(practice_document(hl7v2={"channel_token": TOKEN}))
    with services.engine.begin() as conn:
        practices.save(conn, services.box, document, now=services.clock())


def listen(services, *, pinned=None, idle_timeout=5.0, max_message=256 * 1024, max_clients=8):
    on_message, on_too_large = mllp_callbacks(services, pinned)
    server = MllpServer(
        ("127.0.0.1", 0),
        on_message,
        on_too_large,
        max_message=max_message,
        idle_timeout=idle_timeout,
        max_clients=max_clients,
    )
    start(server)
    return server


@pytest.fixture
def server(services, stored_practice):
    server = listen(services)
    yield server
    server.shutdown()
    server.server_close()


def message(
    name: str, *, control_id: str | None = None, facility: str = "northside", token: str = TOKEN
) -> bytes:
    """A sample addressed to the practice as an interface engine would: MSH-6 names the
    practice and MSH-8 carries the channel token."""
    lines = (PAYLOADS / "hl7v2" / name).read_bytes().decode().strip("\r").split("\r")
    msh = lines[0].split("|")
    msh[5], msh[7] = facility, token
    if control_id:
        msh[9] = control_id
    return "\r".join(["|".join(msh), *lines[1:]]).encode() + b"\r"


class Client:
    def __init__(self, server: MllpServer):
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def acks(self, count: int) -> list[list[str]]:
        """The next `count` ACKs as [MSA-1, MSA-2, MSA-3]."""
        found = []
        while len(found) < count:
            while END not in self.buffer:
                chunk = self.sock.recv(65536)
                assert chunk, "the listener closed the connection"
                self.buffer += chunk
            block, self.buffer = self.buffer.split(END, 1)
            assert block.startswith(START)
            answer = hl7.parse(block[1:].decode())
            found.append([answer.extract_field("MSA", 1, n) for n in (1, 2, 3)])
        return found

    def close(self) -> None:
        self.sock.close()


def events(services) -> list[dict]:
    with services.engine.begin() as conn:
        return [
            dict(row)
            for row in conn.execute(
                select(
                    webhook_events.c.source, webhook_events.c.delivery_id, webhook_events.c.outcome
                )
            ).mappings()
        ]


def test_one_message_is_stored_before_its_aa(server, services):
    client = Client(server)
    client.send(frame(message("own-adt-a03-visit.hl7")))
    assert client.acks(1) == [["AA", "000002", "accepted"]]
    assert events(services) == [{"source": "hl7v2", "delivery_id": "000002", "outcome": "accepted"}]
    client.close()


def test_two_messages_in_one_read_get_two_acks_in_order(server, services):
    client = Client(server)
    client.send(frame(message("own-adt-a03-visit.hl7")) + frame(message("own-siu-s26-noshow.hl7")))
    [first, second] = client.acks(2)
    assert first[:2] == ["AA", "000002"] and second[:2] == ["AA", "24916598"]
    client.close()


def test_a_message_sent_in_small_pieces_is_reassembled(server, services):
    client = Client(server)
    data = frame(message("own-siu-s14-complete.hl7"))
    for index in range(0, len(data), 7):
        client.send(data[index : index + 7])
        time.sleep(0.001)
    assert client.acks(1)[0][:2] == ["AA", "24916580"]
    client.close()


def test_garbage_between_frames_is_skipped(server, services):
    client = Client(server)
    client.send(
        b"\r\n\x00garbage"
        + frame(message("own-adt-a03-visit.hl7"))
        + b"more junk\x1c\r"
        + frame(message("own-siu-s26-noshow.hl7"))
    )
    assert [ack[0] for ack in client.acks(2)] == ["AA", "AA"]
    assert len(events(services)) == 2
    client.close()


def test_a_client_that_leaves_mid_frame_loses_nothing_acknowledged_and_the_listener_goes_on(
    server, services
):
    leaving = Client(server)
    whole = frame(message("own-adt-a03-visit.hl7"))
    leaving.send(whole[: len(whole) // 2])
    leaving.sock.shutdown(socket.SHUT_RDWR)
    leaving.close()
    time.sleep(0.2)
    assert events(services) == []  # never acknowledged: the engine still has it
    again = Client(server)
    again.send(whole)
    assert again.acks(1)[0][:2] == ["AA", "000002"]
    again.close()


def test_several_clients_at_once(server, services):
    results: dict[int, list] = {}

    def send(number: int) -> None:
        client = Client(server)
        client.send(frame(message("own-siu-s26-noshow.hl7", control_id=f"c{number}")))
        results[number] = client.acks(1)[0]
        client.close()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert {n: ack[:2] for n, ack in results.items()} == {n: ["AA", f"c{n}"] for n in range(6)}
    assert len(events(services)) == 6


def test_a_wrong_token_and_an_unknown_practice_get_the_same_ar(server, services):
    client = Client(server)
    client.send(
        frame(message("own-adt-a03-visit.hl7", token="y" * 30))
        + frame(message("own-adt-a03-visit.hl7", facility="nowhere"))
        + frame(message("own-adt-a03-visit.hl7", token=""))
    )
    answers = client.acks(3)
    assert {tuple(a) for a in answers} == {("AR", "000002", answers[0][2])}
    assert events(services) == []
    client.close()


def test_a_malformed_message_gets_an_ae_and_the_connection_goes_on(server, services):
    client = Client(server)
    client.send(frame(b"not hl7 at all") + frame(message("own-adt-a03-visit.hl7")))
    [refused, accepted] = client.acks(2)
    assert refused[0] == "AE" and "MSH" in refused[2]
    assert accepted[0] == "AA"
    client.close()


def test_an_oversized_message_gets_an_ae_without_being_kept(services, stored_practice):
    server = listen(services, max_message=2048)
    try:
        client = Client(server)
        big = message("own-adt-a03-visit.hl7").replace(
            b"\rEVN|", b"\rNTE|1||" + b"x" * 5000 + b"\rEVN|"
        )
        client.send(frame(big) + frame(message("own-siu-s26-noshow.hl7")))
        [refused, accepted] = client.acks(2)
        assert refused[:2] == ["AE", "000002"] and "over" in refused[2]
        assert accepted[0] == "AA"
        assert [e["delivery_id"] for e in events(services)] == ["24916598"]
        client.close()
    finally:
        server.shutdown()
        server.server_close()


def test_an_idle_connection_is_closed(services, stored_practice):
    server = listen(services, idle_timeout=0.3)
    try:
        client = Client(server)
        client.send(START + b"MSH|half a frame")
        time.sleep(1.0)
        assert client.sock.recv(1024) == b""  # closed by the listener
        client.close()
        assert events(services) == []
    finally:
        server.shutdown()
        server.server_close()


def test_connections_beyond_the_bound_are_closed(services, stored_practice):
    server = listen(services, max_clients=1)
    try:
        first = Client(server)
        first.send(frame(message("own-siu-s26-noshow.hl7")))
        first.acks(1)
        second = Client(server)
        assert second.sock.recv(1024) == b""
        first.close()
        second.close()
    finally:
        server.shutdown()
        server.server_close()


def test_a_pinned_listener_serves_its_practice_whatever_msh_6_says(services, stored_practice):
    server = listen(services, pinned="northside")
    try:
        client = Client(server)
        client.send(frame(message("own-adt-a03-visit.hl7", facility="RECEIVING_FACILITY")))
        assert client.acks(1)[0][0] == "AA"
        client.close()
    finally:
        server.shutdown()
        server.server_close()


def test_siu_complete_over_mllp_to_a_survey_and_a_write_back(
    server, services, channels, fake_ehr, run_due
):
    client = Client(server)
    client.send(frame(message("own-siu-s14-complete.hl7")))
    assert client.acks(1)[0][0] == "AA"
    client.close()
    run_due()
    [invitation] = channels["sms"].sent
    token = invitation.link.rsplit("/s/", 1)[1]
    web = create_app(services=services).test_client()
    assert web.post(f"/api/v1/surveys/{token}/response", json={"answers": HIGH}).status_code == 201
    run_due()
    [response] = fake_ehr.resources("QuestionnaireResponse")
    assert response["subject"]["reference"] == "Patient/42"
    with services.engine.begin() as conn:
        assert conn.execute(select(func.count()).select_from(surveys)).scalar() == 1
