# tools/gdb/spanheap.py - gdb commands that read the spanheap allocator's
# data structures from a stopped kernel (or a hosted program built with -g).
#
#   (gdb) source tools/gdb/spanheap.py        (make debug prints the line)
#   spanheap classes          every span class in use: as kmem_dump's table
#   spanheap spans [CLASS]    small spans, all or of one class (object size,
#                             "16n" for the noscan class, or a span class
#                             number as "#33")
#   spanheap span ADDR        the span holding ADDR: class, object index,
#                             allocated or free, owner CPU
#   spanheap mcache CPU       one CPU's cached spans and counters
#   spanheap heapmap          the mheap one character per page, the same
#                             text as kmem_heap_map() (mm/mheapmap.c)
#
# Everything is read through gdb's Python API from the C globals (mcentrals,
# mcaches, mheap and mheap_more_arenas, pagemap_l1, class_to_size, ...), with the layouts the
# debug information describes, so the commands follow the C structures as
# they change; the constants below mirror mm/*.h and are checked against
# the debug information where it has them. Nothing is written.
import gdb

PAGE_SHIFT = 13
STATE_NAMES = {0: "dead", 1: "free", 2: "in use", 3: "large", 4: "page-cached"}
MSPAN_FREE, MSPAN_INUSE, MSPAN_LARGE, MSPAN_CACHED = 1, 2, 3, 4
LIST_NAMES = {0: "none", 1: "mcentral partial", 2: "mcentral full",
              3: "mheap free", 4: "mcache owned (partial)",
              5: "mcache owned (full)"}
FAMILY_CHARS = "123456789abdefghijklmnopqrstuvwxyz"
TINY_SIZE_CLASS_BYTES = 16
LINE_PAGES = 64


def gv(name):
    return gdb.parse_and_eval(name)


def array_len(value):
    lo, hi = value.type.strip_typedefs().range()
    return hi - lo + 1


def num_span_classes():
    return array_len(gv("mcentrals"))


def max_cpus():
    return array_len(gv("mcaches"))


def class_size(cls):
    return int(gv("class_to_size")[cls])


def class_npages(cls):
    return int(gv("class_to_npages")[cls])


def objs_per_span(cls):
    size = class_size(cls)
    return (class_npages(cls) << PAGE_SHIFT) // size if size else 0


def is_tiny_spc(spc):
    return spc == ((sizeclass_of_size(TINY_SIZE_CLASS_BYTES) << 1) | 1)


_size_to_class = None


def sizeclass_of_size(size):
    global _size_to_class
    if _size_to_class is None:
        n = array_len(gv("class_to_size"))
        _size_to_class = {class_size(c): c for c in range(1, n)}
    return _size_to_class.get(size, -1)


def spc_name(spc):
    cls = spc >> 1
    prefix = "tiny" if is_tiny_spc(spc) else "kmalloc"
    return "%s-%d%s" % (prefix, class_size(cls), "n" if spc & 1 else "")


def mcache_nmalloc(mc, spc):
    """Objects of span class spc handed out on mc's CPU: nmalloc counts a
    cache word's slots as it is loaded, so those still in the word are
    taken off (mcache_nmalloc in mm/mcache.c); the tiny class counts
    objects."""
    nm = int(mc["nmalloc"][spc])
    if is_tiny_spc(spc):
        return nm
    return nm - bin(int(mc["alloc_cache"][spc]["free"])).count("1")


def class_nmalloc(spc):
    """Objects handed out in span class spc over every CPU."""
    mcaches = gv("mcaches")
    return sum(mcache_nmalloc(mcaches[cpu], spc) for cpu in range(max_cpus()))


def class_live():
    """Live objects per span class, as kmem_dump counts them
    (mm/mstats.c): a small class's from its spans' bitmaps (frees are
    counted nowhere else), the tiny class's as its tiny allocations less
    its tiny frees."""
    live = {}
    for c in chunks():
        for s, pg, n in chunk_spans(c):
            if s is None or int(s["state"]) != MSPAN_INUSE or is_tiny_spc(int(s["spanclass"])):
                continue
            spc = int(s["spanclass"])
            live[spc] = live.get(spc, 0) + live_objects(s)
    mcaches = gv("mcaches")
    tiny = (sizeclass_of_size(TINY_SIZE_CLASS_BYTES) << 1) | 1
    nf = sum(int(mcaches[cpu]["tiny_nfree"]) for cpu in range(max_cpus()))
    live[tiny] = max(class_nmalloc(tiny) - nf, 0)
    return live


def span_ptr_type():
    return gdb.lookup_type("struct mspan").pointer()


_window = []


def pagemap_window():
    """(base, addr_bits, leaf_bits) of the page map's window (mm/pagemap.h),
    from the constant pagemap_window; read once per program loaded."""
    if not _window:
        w = gv("pagemap_window")
        _window.append((int(w["base"]), int(w["addr_bits"]), int(w["leaf_bits"])))
    return _window[0]


gdb.events.new_objfile.connect(lambda event: _window.clear())


def pagemap_lookup(addr):
    """The span record (a gdb.Value pointer) mapped at addr, or None. The
    page map covers one window of the address space: an address outside it
    is in no span."""
    base, addr_bits, leaf_bits = pagemap_window()
    off = (addr - base) & ((1 << 64) - 1)
    if off >> addr_bits:
        return None
    pn = off >> PAGE_SHIFT
    # Entries are offsets, 0 for none (mm/pagemap.h): a root entry from
    # pagemap_empty_leaf, a leaf entry from mspan_none.
    leaf_off = int(gv("pagemap_l1")[pn >> leaf_bits])
    if leaf_off == 0:
        return None
    leaf_addr = (int(gv("pagemap_empty_leaf").address) + leaf_off) & ((1 << 64) - 1)
    entry_addr = leaf_addr + 8 * (pn & ((1 << leaf_bits) - 1))
    e = int(gv("*(unsigned long *)0x%x" % entry_addr))
    if e == 0:
        return None
    span = (int(gv("&mspan_none")) + e) & ((1 << 64) - 1)
    return gv("(struct mspan *)0x%x" % span)


def arenas():
    """The mheap's arenas (mm/mheap.h): mheap, then mheap_more_arenas[]
    (one unused element when MM_HEAP_ARENAS is 1, which holds no chunk)."""
    yield gv("mheap")
    more = gv("mheap_more_arenas")
    for i in range(int(gv("sizeof(mheap_more_arenas) / sizeof(mheap_more_arenas[0])"))):
        yield more[i]


def chunks():
    """Every heap chunk, arena by arena, in each chunk list's order (as
    kmem_heap_map)."""
    for h in arenas():
        c = h["chunks"]
        while int(c) != 0:
            yield c
            c = c["next"]


def chunk_spans(c):
    """The spans of chunk c in address order: a span starts at the chunk's
    base and each one ends where the next starts."""
    base, npages = int(c["base"]), int(c["npages"])
    pg = 0
    while pg < npages:
        s = pagemap_lookup(base + (pg << PAGE_SHIFT))
        if s is None:
            yield None, pg, 1
            pg += 1
            continue
        n = min(int(s["npages"]), npages - pg)
        yield s, pg, max(n, 1)
        pg += max(n, 1)


def span_containing(addr):
    """The span holding addr: the page map's entry, or, between the ends
    of a large object or free run (which the page map leaves unmapped,
    mm/pagemap.h), the span of addr's chunk that covers it."""
    s = pagemap_lookup(addr)
    if s is not None:
        return s
    for c in chunks():
        base = int(c["base"])
        if base <= addr < base + (int(c["npages"]) << PAGE_SHIFT):
            for s, pg, n in chunk_spans(c):
                if s is not None and addr < base + ((pg + n) << PAGE_SHIFT):
                    return s
    return None


def page_char(s, chunk):
    if s is None:
        return "?"
    state = int(s["state"])
    if state == MSPAN_FREE:
        return "R" if bool(chunk["retained"]) else "."
    if state == MSPAN_LARGE:
        return "L"
    if state == MSPAN_CACHED:
        return "c"
    if state == MSPAN_INUSE:
        cls = int(s["spanclass"]) >> 1
        return FAMILY_CHARS[(cls - 1) // 2] if cls else "?"
    return "?"


def bit(bits, i, remote):
    """Bit i of a span's alloc_bits (remote 0) or remote_bits (1): word
    w of each is pair w of s->bits (mm/mspan.h, "Bitmaps")."""
    return (int(bits[2 * (i // 64) + remote]) >> (i % 64)) & 1


def object_live(s, i):
    """As mspan_obj_live: handed out (and not freed by its owner) and not
    freed remotely."""
    return bool(bit(s["bits"], i, 0) and not bit(s["bits"], i, 1))


def live_objects(s):
    return sum(1 for i in range(int(s["nelems"])) if object_live(s, i))


def parse_class(arg):
    """A span class from "16", "16n" or "#33"; None for all."""
    arg = arg.strip()
    if not arg:
        return None
    if arg.startswith("#"):
        return int(arg[1:], 0)
    noscan = arg.endswith("n")
    size = int(arg[:-1] if noscan else arg, 0)
    cls = sizeclass_of_size(size)
    if cls < 0:
        raise gdb.GdbError("no size class of %d bytes" % size)
    return cls << 1 | (1 if noscan else 0)


class SpanheapPrefix(gdb.Command):
    """Inspect the spanheap allocator: spanheap classes | spans [CLASS] |
span ADDR | mcache CPU | heapmap."""

    def __init__(self):
        super().__init__("spanheap", gdb.COMMAND_DATA, gdb.COMPLETE_NONE, True)


class SpanheapClasses(gdb.Command):
    """Every span class with spans or objects: kmem_dump()'s table
(active objects, objects, object size, objects per span, pages per span,
spans, refills, grows, releases, lock acquisitions and contended ones)."""

    def __init__(self):
        super().__init__("spanheap classes", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        mc = gv("mcentrals")
        print("# name          <active_objs> <num_objs> <objsize> <objperspan> "
              "<pagesperspan> : spandata <num_spans> : <refills> <grows> <releases> "
              ": lock <acquires> <contended>")
        live = class_live()
        for spc in range(2, num_span_classes()):
            c = mc[spc]
            cls = spc >> 1
            nm = class_nmalloc(spc)
            nspans = int(c["nspans"])
            if not nspans and not nm and not int(c["nrefill"]):
                continue
            objs = objs_per_span(cls)
            print("%-15s %13d %10d %9d %13d %15d : spandata %11d : %9d %7d %10d "
                  ": lock %9d %6d" % (
                      spc_name(spc), live.get(spc, 0), nspans * objs, class_size(cls),
                      objs, class_npages(cls), nspans, int(c["nrefill"]),
                      int(c["ngrow"]), int(c["nrelease"]),
                      int(c["lock"]["nacquire"]), int(c["lock"]["ncontended"])))


class SpanheapSpans(gdb.Command):
    """spanheap spans [CLASS]: every small span (of CLASS: an object size,
"16n" for a noscan class, "#N" a span class number), walking the heap's
chunks: address, pages, class, live objects / objects, owner CPU, list."""

    def __init__(self):
        super().__init__("spanheap spans", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        want = parse_class(arg)
        total = 0
        print("%-18s %5s %-16s %11s %5s %s" % ("span", "pages", "class", "live/objs",
                                               "owner", "list"))
        for c in chunks():
            for s, pg, n in chunk_spans(c):
                if s is None or int(s["state"]) != MSPAN_INUSE:
                    continue
                spc = int(s["spanclass"])
                if want is not None and spc != want:
                    continue
                total += 1
                print("0x%016x %5d %-16s %5d/%-5d %5d %s" % (
                    int(s["startaddr"]), int(s["npages"]), spc_name(spc),
                    live_objects(s), int(s["nelems"]), int(s["owner_cpu"]),
                    LIST_NAMES.get(int(s["list"]), "?")))
        print("%d spans" % total)


class SpanheapSpan(gdb.Command):
    """spanheap span ADDR: the span holding ADDR (through the page map),
its state and class, and for a small span the object ADDR falls in: its
index, whether ADDR is its start, allocated or free, and the owner CPU."""

    def __init__(self):
        super().__init__("spanheap span", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        if not arg.strip():
            raise gdb.GdbError("usage: spanheap span ADDR")
        addr = int(gv(arg).cast(gdb.lookup_type("unsigned long")))
        s = span_containing(addr)
        if s is None:
            print("0x%x: not in the heap" % addr)
            return
        state = int(s["state"])
        start, npages = int(s["startaddr"]), int(s["npages"])
        print("0x%x: span 0x%x [0x%x, 0x%x) %d pages, %s, owner CPU %d" % (
            addr, int(s), start, start + (npages << PAGE_SHIFT), npages,
            STATE_NAMES.get(state, "?"), int(s["owner_cpu"])))
        if state != MSPAN_INUSE:
            return
        spc = int(s["spanclass"])
        size = int(s["elemsize"])
        i = (addr - start) // size
        if i >= int(s["nelems"]):
            print("  class %s: past the last object (span tail)" % spc_name(spc))
            return
        print("  class %s (span class %d, %d-byte objects): object %d at 0x%x%s, %s" % (
            spc_name(spc), spc, size, i, start + i * size,
            "" if start + i * size == addr else " (interior pointer)",
            "allocated" if object_live(s, i) else "free"))


class SpanheapMcache(gdb.Command):
    """spanheap mcache CPU: the spans CPU's mcache allocates from (class,
span, free slots left in its cache word), its owned sets (partial and
full, mm/mcache.c), its tiny block
and its counters (mallocs, tiny allocations and frees, large allocations
and frees: the kernel's "mcache per CPU" line; small objects' frees are no
CPU's count, mm/mstats.c)."""

    def __init__(self):
        super().__init__("spanheap mcache", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        if not arg.strip():
            raise gdb.GdbError("usage: spanheap mcache CPU")
        cpu = int(gv(arg))
        if not 0 <= cpu < max_cpus():
            raise gdb.GdbError("CPU %d: the heap has %d mcaches" % (cpu, max_cpus()))
        mc = gv("mcaches")[cpu]
        nm = int(mc["large_alloc"])
        print("mcache of CPU %d:" % cpu)
        for spc in range(num_span_classes()):
            nm += mcache_nmalloc(mc, spc)
            s = mc["alloc"][spc]
            owned = int(mc["nowned"][spc])
            full = int(mc["nfull"][spc])
            has_span = int(s) != 0   # MCACHE_NO_SPAN: none
            if not has_span and owned == 0 and full == 0:
                continue
            line = "  %-16s" % spc_name(spc)
            if has_span:
                line += " alloc span 0x%016x, %d free in its cache word" % (
                    int(s["startaddr"]), bin(int(mc["alloc_cache"][spc]["free"])).count("1"))
            if owned:
                line += ", %d owned partial" % owned
            if full:
                line += ", %d owned full" % full
            print(line)
        tiny = int(mc["tiny"])
        if tiny:
            print("  tiny block 0x%x, offset %d" % (tiny, int(mc["tiny_offset"])))
        print("  partial-set pages %d" % int(mc["owned_pages"]))
        print("  mallocs %d tiny %d tiny-frees %d large %d large-frees %d" % (
            nm, int(mc["nmalloc"][(sizeclass_of_size(TINY_SIZE_CLASS_BYTES) << 1) | 1]),
            int(mc["tiny_nfree"]), int(mc["large_alloc"]), int(mc["large_free"])))


class SpanheapHeapmap(gdb.Command):
    """spanheap heapmap: the mheap one character per 8 KiB page, as
kmem_heap_map() prints it: a size class family ('1'..'9', 'a'..'z'
without 'c': classes 1-2, 3-4, ...), 'L' large, 'c' page-cached, '.' free,
'R' retained; 64 pages a line, identical lines counted."""

    def __init__(self):
        super().__init__("spanheap heapmap", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        print("heap map: one character per 8 KiB page, 64 per line: '1'..'z' size class "
              "family (classes 1-2, 3-4, ...), 'L' large, 'c' page-cached, '.' free, "
              "'R' retained")
        for c in chunks():
            base, npages = int(c["base"]), int(c["npages"])
            chars = []
            for s, pg, n in chunk_spans(c):
                chars.append(page_char(s, c) * n)
            chars = "".join(chars)
            print("chunk 0x%x: %d pages (%d KiB)" % (base, npages,
                                                     (npages << PAGE_SHIFT) >> 10))
            prev, repeats = None, 0
            for first in range(0, npages, LINE_PAGES):
                line = chars[first:first + LINE_PAGES]
                if line == prev:
                    repeats += 1
                    continue
                if repeats:
                    print("  ... %d more lines like the one above" % repeats)
                repeats = 0
                print("0x%x %s" % (base + (first << PAGE_SHIFT), line))
                prev = line
            if repeats:
                print("  ... %d more lines like the one above" % repeats)


SpanheapPrefix()
SpanheapClasses()
SpanheapSpans()
SpanheapSpan()
SpanheapMcache()
SpanheapHeapmap()
