"""Live admission by measured capacity (talkinghead/server/admission.py): the arithmetic with injected
costs and load, the per-frame cost from worker reports, and a server that refuses a session its CPUs
cannot hold while the running one keeps streaming."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from talkinghead.server.admission import MIN_MEASURED_FRAMES, FrameCost, LiveAdmission


def admission(limit=8, cpus=2.0, share=0.85, others=0.0, prior=0.020, overhead=0.0) -> LiveAdmission:
    load = {"value": others}
    a = LiveAdmission(limit, cpus, share, lambda: load["value"], prior_cost=prior, overhead=overhead)
    a.load = load  # tests change the other programs' use through this
    return a


def test_sessions_are_admitted_while_their_measured_need_fits():
    a = admission(prior=0.020)  # 0.5 CPU per session at 25 FPS; 1.7 CPUs to fill
    tickets = [a.try_admit()[0] for _ in range(3)]  # 0.5 + 0.5 + 0.5 (+0.5 would be 2.0 > 1.7)
    assert all(tickets) and a.active == 3
    ticket, why = a.try_admit()
    assert ticket is None and "CPUs are full: 3 live session(s) need 1.5 of 2 CPUs" in why and "try again later" in why
    a.release(tickets[0])
    assert a.try_admit()[0] is not None  # room again


def test_each_session_also_counts_the_server_processs_own_work():
    a = admission(prior=0.020, overhead=0.1)  # 0.5 + 0.1 per session; 1.7 to fill
    tickets = [a.try_admit()[0] for _ in range(2)]
    assert all(tickets) and a.demand() == pytest.approx(1.2)
    ticket, why = a.try_admit()  # 1.2 + 0.6 > 1.7 (without the overhead 1.0 + 0.5 would fit)
    assert ticket is None and "need 1.2 of 2 CPUs" in why and "another needs 0.6" in why


def test_measured_costs_replace_the_estimate():
    a = admission(prior=0.010)  # 0.25 CPU each before measurement
    t1, _ = a.try_admit()
    a.bind(t1, 25, lambda: 0.030)  # measured: 0.75 CPU
    assert a.estimate() == pytest.approx(0.030)  # a newcomer is expected to cost as much as the dearest
    assert a.demand() == pytest.approx(0.75)
    t2, _ = a.try_admit()
    assert t2 is not None  # 0.75 + 0.75 <= 1.7
    assert a.try_admit()[0] is None  # 0.75 + 0.75 (t2 unmeasured, at the estimate) + 0.75 > 1.7
    a.bind(t2, 25, lambda: 0.004)  # t2 measures cheap; a newcomer is still expected at the dearest's cost
    assert a.demand() == pytest.approx(0.75 + 0.1)
    t3, _ = a.try_admit()
    assert t3 is not None  # 0.85 + 0.75 <= 1.7
    assert a.try_admit()[0] is None  # 0.85 + 0.75 (t3, unmeasured) + 0.75 > 1.7
    a.release(t3)
    a.release(t1)
    assert a.last_cost == pytest.approx(0.030)  # remembered for the next estimate
    assert a.estimate() == pytest.approx(0.030)


def test_a_costlier_generator_is_checked_again_once_its_options_are_read():
    a = admission(prior=0.020)  # 0.5 CPU per default session; 1.7 CPUs to fill
    a.extra_cost["diffusion-live"] = 0.012  # measured at start-up: 0.3 CPU more per causal session
    t1, _ = a.try_admit()
    assert a.confirm(t1, "diffusion-live") == ""  # alone: always served
    t2, _ = a.try_admit()
    assert a.confirm(t2, "rules") == ""  # default options never refuse at this step
    assert a.demand() == pytest.approx(0.8 + 0.5)
    t3, _ = a.try_admit()  # admitted at the default estimate: 1.3 + 0.5 > 1.7 would refuse, so not yet
    assert t3 is None
    a.release(t2)
    t3, _ = a.try_admit()  # 0.8 + 0.5 <= 1.7
    why = a.confirm(t3, "diffusion-live")  # 0.8 + 0.8 = 1.6 fits
    assert why == "" and a.demand() == pytest.approx(1.6)
    t4, _ = a.try_admit()
    assert t4 is None  # 1.6 + 0.5 > 1.7
    a.release(t3)
    a.load["value"] = 0.5  # other programs take half a CPU: 0.8 + 0.8 + 0.5 > 1.7
    t5, _ = a.try_admit()  # even the default estimate does not fit (0.8 + 0.5 + 0.5 = 1.8 > 1.7): refused at once
    assert t5 is None
    a.load["value"] = 0.3
    t5, _ = a.try_admit()  # 0.8 + 0.5 + 0.3 = 1.6 fits at the default estimate
    why = a.confirm(t5, "diffusion-live")  # 0.8 + 0.8 + 0.3 = 1.9 does not
    assert "CPUs are full for a diffusion-live session" in why and "default motion" in why
    assert a.active == 1 and a.demand() == pytest.approx(0.8)  # the refused one is released
    a.bind(t1, 25, lambda: 0.030)  # once measured, the session counts at its measured cost
    assert a.demand() == pytest.approx(0.75)


def test_other_programs_use_counts_and_the_first_session_is_always_admitted():
    a = admission(prior=0.020, others=1.5)  # 0.2 CPU left of 1.7
    t1, _ = a.try_admit()
    assert t1 is not None  # the first always
    ticket, why = a.try_admit()
    assert ticket is None and "other programs use 1.5" in why
    a.load["value"] = 0.0
    assert a.try_admit()[0] is not None


def test_the_cap_holds_whatever_the_capacity_and_share_zero_turns_measuring_off():
    a = admission(limit=2, prior=0.0001)
    assert a.try_admit()[0] and a.try_admit()[0]
    ticket, why = a.try_admit()
    assert ticket is None and why == "all 2 live sessions are in use: try again later"
    off = admission(limit=4, share=0, others=10.0, prior=1.0)
    assert all(off.try_admit()[0] for _ in range(4)) and off.try_admit()[0] is None


def test_frame_cost_is_cpu_time_per_frame_over_the_window():
    cost = FrameCost(window=20)
    for frame in range(1, MIN_MEASURED_FRAMES + 1):
        cost.add(frame, 0.5 + 0.03 * frame)
    assert cost.per_frame is None  # not enough frames yet
    for frame in range(MIN_MEASURED_FRAMES + 1, 60):
        cost.add(frame, 0.5 + 0.03 * frame + (0.02 * (frame - 39) if frame > 39 else 0.0))
    assert cost.per_frame == pytest.approx(0.05)  # the last 20 frames: 30 ms + 20 ms each
    cost.reset()
    assert cost.per_frame is None


# ------------------------------------------------------------------------------------------------
# a server with measured admission
# ------------------------------------------------------------------------------------------------

pytest.importorskip("fastapi")
ws_client = pytest.importorskip("websockets.sync.client")


def test_a_server_refuses_a_session_its_cpus_cannot_hold(tmp_path, demo_image_path, demo_audio):
    import httpx

    from talkinghead.server.background import BackgroundServer
    from talkinghead.server.settings import ServerSettings

    settings = ServerSettings(data_dir=tmp_path, max_live_sessions=4, live_cpu_share=0.85)
    with BackgroundServer(settings) as server:
        deadline = time.monotonic() + 120
        while not (status := httpx.get(server.url + "/api/status").json())["live_capacity"]["calibrated"]:
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
        assert 0 < status["live_capacity"]["frame_cost_ms"] < 1000  # measured at start-up on this machine
        pcm = (np.clip(demo_audio[:16000 * 3], -1, 1) * 32767).astype("<i2").tobytes()
        with ws_client.connect(server.ws_url + "/api/live", open_timeout=60) as first:
            first.send(json.dumps({"type": "start", "audio_format": "s16"}))
            first.send(demo_image_path.read_bytes())
            assert json.loads(first.recv(timeout=60))["type"] == "ready"
            for i in range(0, 16000 * 2, 640):
                first.send(pcm[2 * i:2 * (i + 640)])
            admission = server.app.state.live_slots
            admission.others = lambda: 2 * admission.cpus  # other programs now fill the machine
            with ws_client.connect(server.ws_url + "/api/live", open_timeout=60) as second:
                refusal = json.loads(second.recv(timeout=30))
            assert refusal["error"] == "busy" and "CPUs are full" in refusal["detail"]
            assert second.close_code == 1013
            first.send(json.dumps({"type": "stop"}))  # the running session is untouched: it ends normally
            messages = []
            while not messages or messages[-1] != "end":
                message = first.recv(timeout=60)
                messages.append(json.loads(message)["type"] if isinstance(message, str) else "frame")
            assert messages.count("frame") >= 45  # ~2 s of audio at 25 FPS
