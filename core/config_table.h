/*
 * config_table.h - every WEFT_* knob, declared once: X(id, type, default, help).
 * Included by config.h (for the ids) and config.c (for the table). `weft-info --config`
 * prints it; docs/configuration.md documents it. Add a knob here and nowhere else.
 */
/* clang-format off */
/* Logging */
X(DEBUG,              STRING, "WARN",   "Log level: NONE, WARN, INFO or TRACE")
X(DEBUG_SUBSYS,       STRING, "ALL",    "Subsystems to log, comma-separated: INIT,NET,COLL,GPU,BOOT or ALL; a leading ^ excludes")
X(DEBUG_FILE,         STRING, "",       "Write logs to this file instead of stderr (%h: host, %p: pid)")
/* Bootstrap and launcher */
X(RANK,               INT,    "-1",     "This process's rank (set by weft-run or your launcher)")
X(NRANKS,             INT,    "-1",     "Number of ranks (set by weft-run or your launcher)")
X(LOCAL_RANK,         INT,    "-1",     "Rank among the ranks on this host (set by weft-run)")
X(ROOT,               STRING, "",       "Rendezvous address host:port of the bootstrap root")
X(SECRET,             STRING, "",       "Job secret, 64 hex digits, that every rank proves at rendezvous")
X(TIMEOUT,            DOUBLE, "300",    "Seconds any wait may last before it fails with WEFT_ERR_TIMEOUT")
X(SLURM_PORT_RANGE,   STRING, "20000-29999", "Ports lo-hi for the rendezvous under srun without PMI: rank 0 listens on lo + (SLURM_JOB_ID * 101 + SLURM_STEP_ID) mod (hi - lo + 1) on the step's first node")
/* Transports */
X(TRANSPORT,          STRING, "auto",   "Force one transport for every peer: auto, shm, verbs, ucx or tcp (verbs and ucx when built with them); auto picks shm on one host, verbs across hosts when both ends have an active RDMA port, tcp otherwise")
X(SOCKET_IFNAME,      STRING, "",       "Network interfaces for TCP (prefix match; ^ excludes, = exact); default: first non-loopback up interface, else loopback")
X(SOCKET_FAMILY,      STRING, "auto",   "Address family for TCP: auto, ipv4 or ipv6")
X(SOCKET_NSOCKS,      INT,    "2",      "TCP sockets per peer; large messages are striped across them")
X(SOCKET_BUFSIZE,     SIZE,   "0",      "SO_SNDBUF/SO_RCVBUF for TCP data sockets; 0 keeps the kernel's autotuning, which measured faster on loopback")
X(SOCKET_DEAD_TIMEOUT, INT,   "30",     "Seconds after which a TCP peer that stopped answering (host powered off, cable pulled: no FIN, no RST) fails with WEFT_ERR_REMOTE instead of waiting for WEFT_TIMEOUT: TCP_USER_TIMEOUT for unacknowledged data, keepalive probes for idle sockets; 0 leaves the kernel's defaults (minutes)")
X(IB_HCA,             STRING, "",       "RDMA ports to use, NCCL_IB_HCA syntax: device[:port],... (prefix match; a leading ^ excludes, = exact); default: every active port")
X(IB_GID_INDEX,       INT,    "-1",     "GID index for RoCE; -1 picks the first RoCE v2 GID of the wanted address family (IPv4 first), else RoCE v1")
X(IB_EAGER_SIZE,      SIZE,   "8K",     "Bytes per slot of a verbs receive ring; messages up to a slot (less a 64-byte header) are copied eagerly, larger ones go zero-copy by rendezvous")
X(IB_EAGER_SLOTS,     INT,    "16",     "Slots of the verbs receive ring of each peer: eager messages a sender may have in flight before the receiver frees slots")
X(IB_RNDV,            STRING, "write",  "Zero-copy rendezvous for large verbs messages: write (the sender RDMA-writes into the receive buffer) or read (the receiver RDMA-reads the send buffer)")
X(IB_REG_CACHE,       STRING, "auto",   "Keep registrations made on the fly for rendezvous (like Open MPI's leave_pinned): auto keeps those of host memory when libucm's memory events (UCX) work here, so that memory the application frees is dropped from the cache before it can be reused, else registers per transfer (one INFO line says which); 1 keeps them all, device memory included, even without the events (unsafe if the application frees and reuses memory that Weft saw); 0 never. Buffers given to weft_mem_register, and Weft's own scratch, are registered once whatever this says")
X(IB_REG_CACHE_MAX,   INT,    "64",     "Registrations WEFT_IB_REG_CACHE keeps (least recently used ones are dropped)")
X(IB_QP_DEPTH,        INT,    "256",    "Send work requests outstanding per verbs queue pair")
X(IB_QPS_PER_PEER,    INT,    "1",      "Queue pairs per verbs peer (1-4). Rendezvous data (messages above a ring slot) is striped over all of them, each queue pair its own flow: RoCE v2 hashes each to its own UDP source port, which ECMP switches spread over their paths; eager messages, credits and the FIN stay on the first. Set it alike on every rank")
X(IB_RAILS,          INT,    "1",      "Ports each rank uses for verbs (1-4): its own (the ports WEFT_IB_HCA selects, taken round-robin by local rank) and the next ones of the selection, on the same HCA or others; the data queue pairs (WEFT_IB_QPS_PER_PEER, raised to at least this) are spread over them, so each large message is striped over several ports (multi-rail). Fewer are used when fewer are selected")
X(IB_INLINE,          SIZE,   "128",    "Bytes of a verbs work request sent inline (small eager messages skip the staging copy); the device may grant less")
X(IB_TIMEOUT,         INT,    "14",     "Verbs ACK timeout exponent: 4.096 us * 2^value per try (14: 67 ms; soft-RoCE devices get 18, 1.07 s, unless this is set); with WEFT_IB_RETRY_CNT it bounds how fast a dead peer is detected")
X(IB_RETRY_CNT,       INT,    "7",      "Verbs transport retries before a send fails with retry-exceeded (0-7)")
X(UCX_INLINE,         SIZE,   "8K",     "UCX transport: messages below this size travel with their header in one UCX message (copied through a bounce buffer); larger ones follow it as a second message, zero-copy through UCX's rendezvous; same value on every rank")
X(SHM_SLOT_SIZE,      SIZE,   "4K",     "Bytes per slot of a shared-memory queue (copy path); a message takes one slot per slot size, its first slot less a 40-byte header")
X(SHM_SLOTS,          INT,    "128",    "Slots per shared-memory queue, one queue per ordered pair of local ranks: how many small messages a sender may run ahead of its receiver")
X(SHM_CMA,            BOOL,   "0",      "Single-copy cross-memory attach (process_vm_readv) for large shm messages; off by default: the pipelined copy path measured faster (see docs/design.md)")
X(SHM_CMA_THRESHOLD,  SIZE,   "64K",    "Messages at least this large use single-copy when WEFT_SHM_CMA allows")
X(SPIN_COUNT,         INT,    "2000",   "Polls of an idle wait before it starts yielding the CPU; when a host runs more ranks than it has CPUs and this is unset, waits yield at once")
/* Collectives */
X(ALGO,               STRING, "auto",   "Force algorithms: auto (the cost model picks), or a comma-separated list of NAME (every collective that has it) or COLLECTIVE=NAME; allreduce: ring, rd, rabenseifner, tree, hier (two-level: inside hosts, then across; docs/topology.md); allgather: ring, bruck; reduce_scatter: ring, halving; broadcast: binomial, chain, scatter_allgather; reduce: binomial, chain (docs/algorithms.md)")
X(SMALL_MSG_SIZE,     SIZE,   "0",      "0: the cost model picks each algorithm; else the fixed rule of old: allreduce below this many bytes uses recursive doubling and the ring above, broadcast and reduce a binomial tree below and a chain above")
X(CHUNK_SIZE,         SIZE,   "256K",   "Pipeline chunk of ring, chain and tree algorithms, in bytes; when not set, the cost model picks one per call between 64K and 1M")
X(MODEL_LATENCY_US,   DOUBLE, "0",      "Cost model: latency of one message in microseconds; 0 takes the default of the slowest transport in use (shm 1, verbs/ucx 3, tcp 20)")
X(MODEL_BW_GBPS,      DOUBLE, "0",      "Cost model: bandwidth of one link in GB/s; 0 takes the default of the slowest transport in use (shm 6, verbs/ucx 10, tcp 1.5)")
X(MODEL_REDUCE_GBPS,  DOUBLE, "0",      "Cost model: host reduction speed in GB/s of output; 0 takes the default, 5")
X(PIPELINE_DEPTH,     INT,    "4",      "Chunks in flight per peer in pipelined algorithms, sends and receives each")
X(CHECK,              BOOL,   "0",      "Before every collective (host and stream calls) the ranks exchange a 40-byte fingerprint of the call (kind, count, dtype, op, root, sequence number); a mismatch fails on every rank with WEFT_ERR_INVALID_ARG naming both calls and both ranks. Costs ceil(log2 nranks) extra message rounds per call; same value on every rank")
X(SHARP,              STRING, "auto",   "SHARP offload of allreduce and barrier through libsharp_coll (NVIDIA HPC-X), loaded with dlopen: auto uses it when every rank can load and initialise it (else one INFO line and the host algorithms), 1 requires it (communicator init fails, naming the library and the cause), 0 never loads it. Types and operations the library does not support run on the host. Same value on every rank")
X(SHARP_LIB,          STRING, "libsharp_coll.so", "The libsharp_coll that WEFT_SHARP loads: a file name searched like dlopen does (LD_LIBRARY_PATH, e.g. HPC-X's sharp/lib) or a path")
/* Topology and hierarchy (docs/topology.md) */
X(BIND,               STRING, "auto",   "Where each rank and the threads Weft starts run: auto (near the rank's NIC when the job spans hosts and hwloc knows the NIC's PCI locality; otherwise not bound), none, or CPU lists like 0-3,8 (as taskset -c), one per local rank separated by ':' and taken in turn (0-1:2-3: local rank 0 on CPUs 0-1, local rank 1 on 2-3, local rank 2 on 0-1...); never widens the CPUs the process may use; reported at INFO")
X(HIER_THRESHOLD,     SIZE,   "1M",     "Allreduce of at least this many bytes on a job over several hosts, with the same number (2 or more) of ranks on each, uses the two-level algorithm (unless WEFT_ALGO forces an allreduce algorithm; docs/topology.md)")
X(NCHANNELS,          INT,    "1",      "Rings a ring allreduce, allgather or reduce_scatter runs at once: 2 sends half the data round the ring and half round the reversed ring, so every link carries data both ways (needs 3 ranks or more; more than 2 is taken as 2, see docs/topology.md)")
X(HOST_ID,            STRING, "",       "Testing: ranks with different values count as different hosts even on one machine (shm is then not used between them, rings and the two-level allreduce see several hosts); empty: the real host")
/* GPU */
X(GPU_STREAM_RELEASE, STRING, "auto",   "How a stream waits for the host to finish a staged operation: memops (cuStreamWaitValue32 on host-mapped memory), hostfn (a cudaLaunchHostFunc that blocks CUDA's callback thread), or auto (memops when the driver has them)")
X(GPU_IPC,            STRING, "auto",   "Collectives on device buffers with every rank on one host: auto moves and reduces the data on the GPUs through CUDA IPC (mapping the peers' buffers), falling back to staging when any rank cannot share its buffers; 0 always stages through pinned host memory. Same value on every rank")
X(GPU_CHUNK_SIZE,     SIZE,   "4M",     "Device buffers of a collective staged through pinned host memory go in chunks of at most this many bytes per buffer, the copies of one chunk overlapping the wire time of the next; a stream call whose buffers fit in one chunk is staged whole on its stream. Same value on every rank")
X(GPU_IPC_CACHE,      INT,    "64",     "CUDA IPC mappings of peers' allocations kept open per peer (least recently used ones are closed; at least 2)")
/* Python package */
X(SO_PATH,            STRING, "",       "Read by the Python package (python/, docs/python.md), not the library: the libweft.so it loads, or a directory holding it; unset: the build tree, pkg-config weft, then the system loader")
/* clang-format on */
