"""What an SQS endpoint alone sustains: SendMessageBatch calls of 10 messages from 4 threads
(the webapi publisher's best case) for ``--seconds``, in a process of its own, into a queue
of its own (left for the bench's drain to empty). Prints one JSON line: messages, calls,
seconds, messages per second."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

from botocore.config import Config

from bench.fake_aws import client

BODY = '{"op":"modify","jobId":"job00001","sentAt":"2026-01-01T00:00:00.000000Z"}'


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sqs_floor")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    sqs = client("sqs", args.endpoint, Config(max_pool_connections=args.threads))
    url = sqs.create_queue(QueueName="bench-sqs-floor")["QueueUrl"]
    entries = [{"Id": str(n), "MessageBody": BODY} for n in range(10)]
    calls = [0] * args.threads
    started = time.monotonic()
    deadline = started + args.seconds

    def send(slot: int) -> None:
        while time.monotonic() < deadline:
            sqs.send_message_batch(QueueUrl=url, Entries=entries)  # type: ignore[arg-type]
            calls[slot] += 1

    threads = [threading.Thread(target=send, args=(n,)) for n in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    total = sum(calls)
    result = {
        "calls": total,
        "messages": total * 10,
        "seconds": round(elapsed, 2),
        "messages_per_s": round(total * 10 / elapsed, 1),
    }
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
