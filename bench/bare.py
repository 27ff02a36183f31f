"""The ceiling: a bare requests.Session loop, one request after another, as fast as it goes.

Run as one of several processes side by side with the pipeline's measurement; it prints the
seconds it took for its share and the CPU seconds its loop used (interpreter start left out).
"""

import argparse
import json
import time

import requests


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args()
    session = requests.Session()
    body = json.dumps({"hello": "world"}).encode()
    started = time.perf_counter()
    cpu_started = time.process_time()
    for _ in range(args.count):
        response = session.post(
            args.url, data=body, headers={"Content-Type": "application/json"}, timeout=(10, 30)
        )
        response.raise_for_status()
    print(time.perf_counter() - started, time.process_time() - cpu_started)


if __name__ == "__main__":
    main()
