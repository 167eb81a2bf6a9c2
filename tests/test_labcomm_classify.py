"""`classify` on the lab comm: the kernel tells the extension which cells are prompts.

The extension asks while the user types, so that a prompt cell looks like one before it
ever runs; the kernel answers with its own routing (docs/protocol.md, "Classify").
"""

from __future__ import annotations

from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from test_labcomm import (
    FakeKernel,
    collect,
    comm_data,
    hello,
    open_comm,
    shell_request,
)

from codeact_kernel.labcomm import CLASSIFY_LIMIT, TARGET, LabBridge
from codeact_kernel.provenance import source_hash

# The real-kernel fixtures of test_labcomm, shared (module scope, one kernel per module).
from test_labcomm import jupyter_path, kernel_client  # noqa: F401  isort: skip


def classified(comm: Any) -> list[dict[str, Any]]:
    return [message for message in comm.sent if message["type"] == "classified"]


def test_prose_is_a_prompt_and_code_is_not() -> None:
    kernel = FakeKernel()
    LabBridge(kernel)
    comm = open_comm(kernel, [], hello())
    comm.receive({"type": "classify", "cell_id": "c1", "source": "plot revenue by month"})
    comm.receive({"type": "classify", "cell_id": "c2", "source": "df.plot()"})
    comm.receive({"type": "classify", "cell_id": "c3", "source": ""})
    assert classified(comm) == [
        {
            "type": "classified",
            "cell_id": "c1",
            "source_hash": source_hash("plot revenue by month"),
            "kind": "natural_language",
        },
        {
            "type": "classified",
            "cell_id": "c2",
            "source_hash": source_hash("df.plot()"),
            "kind": "code",
        },
        {"type": "classified", "cell_id": "c3", "source_hash": source_hash(""), "kind": "code"},
    ]


def test_sources_over_the_limit_are_not_classified() -> None:
    kernel = FakeKernel()
    LabBridge(kernel)
    comm = open_comm(kernel, [], hello())
    long_prose = ("plot the revenue by month " * 2000)[: CLASSIFY_LIMIT + 1]
    comm.receive({"type": "classify", "cell_id": "c1", "source": long_prose})
    comm.receive({"type": "classify", "cell_id": "c2", "source": long_prose[:CLASSIFY_LIMIT]})
    assert [(m["cell_id"], m["kind"]) for m in classified(comm)] == [("c2", "natural_language")]


def test_malformed_classify_requests_get_no_answer() -> None:
    kernel = FakeKernel()
    lab = LabBridge(kernel)
    comm = open_comm(kernel, [], hello())
    comm.receive({"type": "classify", "cell_id": "c1"})
    comm.receive({"type": "classify", "cell_id": 3, "source": "hello there"})
    comm.receive({"type": "classify", "source": "hello there"})
    assert classified(comm) == []
    assert lab.connected


def test_real_kernel_classifies_with_the_users_names(
    kernel_client: BlockingKernelClient,  # noqa: F811
) -> None:
    """A name the user defined is code where the same text, undefined, is a request."""
    client = kernel_client
    open_id = shell_request(
        client, "comm_open", {"comm_id": "classify-comm", "target_name": TARGET, "data": hello()}
    )
    collect(client, open_id)

    def kind(source: str) -> str:
        msg_id = shell_request(
            client,
            "comm_msg",
            {
                "comm_id": "classify-comm",
                "data": {"type": "classify", "cell_id": "typed", "source": source},
            },
        )
        (answer,) = comm_data(collect(client, msg_id))
        assert answer["cell_id"] == "typed"
        assert answer["source_hash"] == source_hash(source)
        return str(answer["kind"])

    assert kind("数据分析") == "natural_language"
    assert kind("load the sales data and chart it") == "natural_language"
    assert kind("print('hi')") == "code"
    assert kind("%%codeact\nsummarise df") == "natural_language"
    msg_id = shell_request(client, "execute_request", {"code": "数据分析 = 1", "silent": False})
    collect(client, msg_id)
    assert kind("数据分析") == "code"
