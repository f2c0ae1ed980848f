#!/usr/bin/env python3
"""Replay a classic pcap file to standard output at a given packet rate, as a live capture
would arrive through a pipe (`tcpdump -w - | twsleuth watch -`): the file header first, then
the records in batches of 10 ms worth, each written when its time comes.

    scripts/pace_capture.py --pps 100000 [--seconds 30] capture.pcap | twsleuth watch -

The records' own timestamps are kept (the capture's clock is not the wall clock). With
--seconds, replay stops after that much wall time, starting again from the file's first record
if it ends before (timestamps shifted forward by the file's span each round, so they keep
increasing).
Only the Python standard library is used.
"""

import argparse
import struct
import sys
import time

BATCH_S = 0.01


def records(data, little):
    """Yield (offset, length, ts_sec, ts_frac) of each record of a classic pcap's body."""
    order = "<" if little else ">"
    at = 24
    while at + 16 <= len(data):
        ts_sec, ts_frac, caplen, _ = struct.unpack_from(order + "IIII", data, at)
        end = at + 16 + caplen
        if end > len(data):
            break
        yield at, end - at, ts_sec, ts_frac
        at = end


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("capture", help="a classic pcap file (not pcapng, not compressed)")
    ap.add_argument("--pps", type=float, required=True, help="packets per second")
    ap.add_argument("--seconds", type=float, default=0.0,
                    help="stop after this many seconds of wall time, replaying in rounds if "
                         "the file ends before (default: the whole file, once)")
    args = ap.parse_args()
    with open(args.capture, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        little = True
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        little = False
    else:
        sys.exit("pace_capture.py: not a classic pcap file")
    order = "<" if little else ">"
    index = list(records(data, little))
    if not index:
        sys.exit("pace_capture.py: no record")
    span = index[-1][2] - index[0][2] + 1
    out = sys.stdout.buffer
    out.write(data[:24])
    per_batch = max(1, int(args.pps * BATCH_S))
    start = time.monotonic()
    sent = 0
    shift = 0
    while True:
        batch = bytearray()
        for at, length, ts_sec, ts_frac in index:
            record = bytearray(data[at:at + length])
            if shift:
                struct.pack_into(order + "I", record, 0, ts_sec + shift)
            batch += record
            sent += 1
            if sent % per_batch == 0:
                out.write(batch)
                out.flush()
                batch = bytearray()
                due = start + sent / args.pps
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                if args.seconds and time.monotonic() - start >= args.seconds:
                    return
        out.write(batch)
        out.flush()
        if time.monotonic() - start >= args.seconds:
            break
        shift += span


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:
        sys.exit(0)
