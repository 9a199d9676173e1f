#!/usr/bin/env python3
"""tests/host/realprogs/threads.py - an allocation-heavy multithreaded Python
program for tests/host/realprogs.sh, which runs it with and without
LD_PRELOAD of libspanheap.so and compares what it prints.

Every piece of work is seeded, so the output is the same on every run
whatever the thread schedule: each task returns a digest of what it built,
and digests are combined in task order, never in completion order.

The work (run it with PYTHONMALLOC=malloc so that every Python object, not
only those above pymalloc's 512 bytes, comes from the C allocator):
  - records: lists of nested dicts built from random words and numbers,
    json.dumps/json.loads round trips, sorted by several keys;
  - text: random text split into words, counted, sorted, joined, re-encoded;
  - grow: strings, bytearrays and lists grown piece by piece (realloc), and
    large buffers (hundreds of KiB to a few MiB) made and dropped;
  - pipeline: producer threads make objects that consumer threads check
    and drop through queue.Queue, so objects are freed by another thread
    than the one that allocated them;
  - all of it on a concurrent.futures thread pool and on short-lived
    threading.Thread workers (more threads over the run than CPUs, each
    exiting while others still allocate);
  - many-threads: 80 threads alive at once (more than the heap's 64 CPU
    slots), each freeing what its neighbour allocated;
  - fork-pool: multiprocessing pools forked while three threads allocate.

Usage: threads.py [--scale N]   (default 1; the work grows linearly)
Prints one "name digest" line per phase and a final "total" line.
"""
import argparse
import concurrent.futures
import hashlib
import json
import queue
import random
import threading

WORDS = None


def words():
    """A fixed vocabulary of 2000 pseudo-words."""
    global WORDS
    if WORDS is None:
        rng = random.Random(1)
        letters = "abcdefghijklmnopqrstuvwxyz"
        WORDS = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 12)))
                 for _ in range(2000)]
    return WORDS


def digest(obj):
    """sha256 of an object's canonical JSON form."""
    data = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(data).hexdigest()


def records_task(seed, n):
    """Nested records, a JSON round trip, sorting on several keys."""
    rng = random.Random(seed)
    vocab = words()
    recs = []
    for i in range(n):
        recs.append({
            "id": i,
            "name": " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 6))),
            "score": rng.randint(-10**6, 10**6),
            "tags": sorted({rng.choice(vocab) for _ in range(rng.randint(0, 8))}),
            "attrs": {rng.choice(vocab): rng.random() for _ in range(rng.randint(0, 5))},
            "blob": rng.choice(vocab) * rng.randint(1, 200),
        })
    text = json.dumps(recs)
    back = json.loads(text)
    assert back == recs
    back.sort(key=lambda r: (r["score"], r["name"], r["id"]))
    by_tag = {}
    for r in back:
        for t in r["tags"]:
            by_tag.setdefault(t, []).append(r["id"])
    top = [(t, len(ids), sum(ids) % 100003) for t, ids in by_tag.items()]
    top.sort(key=lambda x: (-x[1], x[0]))
    return digest([[r["id"] for r in back], top[:50], len(text)])


def text_task(seed, nwords):
    """Random text split, counted, sorted and re-joined."""
    rng = random.Random(seed)
    vocab = words()
    text = " ".join(rng.choice(vocab) for _ in range(nwords))
    split = text.split()
    counts = {}
    for w in split:
        counts[w] = counts.get(w, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    upper = text.upper().replace("A", "4").encode("utf-16")
    lines = [" ".join(split[i:i + 17]) for i in range(0, nwords, 17)]
    lines.sort(key=len)
    return digest([ranked[:100], len(upper), hashlib.md5(upper).hexdigest(),
                   hashlib.sha1("\n".join(lines).encode()).hexdigest()])


def grow_task(seed, steps):
    """Growth by small steps (realloc paths) and large short-lived buffers."""
    rng = random.Random(seed)
    s = ""
    ba = bytearray()
    lst = []
    h = hashlib.sha256()
    for i in range(steps):
        piece = "%d:%x;" % (i, rng.getrandbits(40))
        s += piece
        ba.extend(piece.encode() * rng.randint(1, 4))
        lst.append((i, piece))
        if i % 2000 == 1999:
            big = bytes(rng.randint(100_000, 3_000_000))
            big2 = big + bytes([i & 0xFF]) * 1000
            h.update(big2[-2000:])
            h.update(len(big2).to_bytes(8, "little"))
            del big, big2
            lst = lst[len(lst) // 3:]
            del ba[: len(ba) // 2]
    h.update(s.encode())
    h.update(bytes(ba))
    h.update(repr(lst[-100:]).encode())
    return h.hexdigest()


def pipeline(seed, nproducers, nitems):
    """Producers allocate, consumers on other threads check and free.
    Each producer has its own queue and consumer, so each stream's order
    is fixed; streams are combined in producer order."""
    queues = [queue.Queue(maxsize=64) for _ in range(nproducers)]
    results = [None] * nproducers

    def produce(k):
        rng = random.Random(seed * 1000 + k)
        vocab = words()
        for i in range(nitems):
            obj = {"k": k, "i": i,
                   "words": [rng.choice(vocab) for _ in range(rng.randint(1, 30))],
                   "payload": bytes(rng.randint(0, 4000))}
            queues[k].put(obj)
        queues[k].put(None)

    def consume(k):
        h = hashlib.sha256()
        n = 0
        while True:
            obj = queues[k].get()
            if obj is None:
                break
            assert obj["k"] == k and obj["i"] == n
            h.update(("|".join(obj["words"]) + str(len(obj["payload"]))).encode())
            n += 1
        results[k] = (n, h.hexdigest())

    threads = [threading.Thread(target=produce, args=(k,)) for k in range(nproducers)]
    threads += [threading.Thread(target=consume, args=(k,)) for k in range(nproducers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return digest(results)


def short_lived_threads(seed, rounds, width, n):
    """Rounds of short threads, each building records and exiting."""
    out = []
    for r in range(rounds):
        res = [None] * width

        def work(j):
            res[j] = records_task(seed + 97 * r + j, n)

        threads = [threading.Thread(target=work, args=(j,)) for j in range(width)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out.append(res)
    return digest(out)


def many_threads(seed, nthreads, n):
    """More threads alive at once than the heap has CPU slots (64): each
    builds records, waits for all the others, then frees its neighbour's
    records and builds new ones."""
    barrier = threading.Barrier(nthreads)
    held = [None] * nthreads
    res = [None] * nthreads

    def work(j):
        held[j] = [records_task(seed + j, n), [str(i) * (i % 50) for i in range(n)]]
        barrier.wait()
        neighbour = held[(j + 1) % nthreads]
        barrier.wait()
        held[(j + 1) % nthreads] = None
        res[j] = (neighbour[0], records_task(seed + 10000 + j, n))

    threads = [threading.Thread(target=work, args=(j,)) for j in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return digest(res)


def fork_task(i):
    rng = random.Random(i)
    d = [{"k": rng.randint(0, 10**9), "v": "y" * rng.randint(1, 5000)} for _ in range(2000)]
    d.sort(key=lambda r: r["k"])
    return digest(d)


def fork_pool(seed, rounds, ntasks):
    """multiprocessing pools made with fork() while other threads are busy
    allocating: the children's heap must be whole."""
    import multiprocessing
    ctx = multiprocessing.get_context("fork")
    stop = threading.Event()

    def churn(s):
        rng = random.Random(s)
        while not stop.is_set():
            d = [{"k": rng.random(), "s": "x" * rng.randint(1, 3000)} for _ in range(100)]
            json.loads(json.dumps(d))

    busy = [threading.Thread(target=churn, args=(seed + s,)) for s in range(3)]
    for t in busy:
        t.start()
    out = []
    try:
        for r in range(rounds):
            with ctx.Pool(2) as pool:
                out.append(pool.map(fork_task, range(seed + r * ntasks, seed + (r + 1) * ntasks)))
    finally:
        stop.set()
        for t in busy:
            t.join()
    return digest(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=1)
    k = ap.parse_args().scale
    phases = []

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        phases.append(("records", digest(list(pool.map(
            lambda s: records_task(s, 1500 * k), range(100, 108))))))
        phases.append(("text", digest(list(pool.map(
            lambda s: text_task(s, 60000 * k), range(200, 206))))))
        phases.append(("grow", digest(list(pool.map(
            lambda s: grow_task(s, 20000 * k), range(300, 304))))))
    phases.append(("pipeline", pipeline(400, 3, 3000 * k)))
    phases.append(("short-threads", short_lived_threads(500, 4, 5, 300 * k)))
    phases.append(("many-threads", many_threads(600, 80, 40 * k)))
    phases.append(("fork-pool", fork_pool(700, 3, 4 * k)))

    total = hashlib.sha256()
    for name, d in phases:
        print(name, d)
        total.update(d.encode())
    print("total", total.hexdigest())


if __name__ == "__main__":
    main()
