#!/usr/bin/env python3
"""The status publisher of the original ZeroMQ/Redis/Graphite pipeline, as it
was, pointed at tallyd. Its only change is the command line, for tests:

    python3 examples/publisher.py [endpoint] [interval-seconds] [count]

defaults: tcp://127.0.0.1:5555 (tallyd's shipped SUB socket), every 5 s,
forever. Needs pyzmq (Debian: apt-get install python3-zmq).
"""
import json
import sys
import time
import zlib

import zmq

endpoint = sys.argv[1] if len(sys.argv) > 1 else 'tcp://127.0.0.1:5555'
interval = float(sys.argv[2]) if len(sys.argv) > 2 else 5
count = int(sys.argv[3]) if len(sys.argv) > 3 else None

c = zmq.Context(); s = c.socket(zmq.PUB)
s.connect(endpoint); s.setsockopt(zmq.SNDHWM, 1)
sent = 0
while count is None or sent < count:
    s.send(zlib.compress(json.dumps([{'value': time.time() % 100,
           'name': 'interesting_metric', 'time': time.time()}]).encode()))
    sent += 1
    time.sleep(interval)
s.close(linger=1000)
c.term()
