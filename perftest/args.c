/*
 * args.c - parses weft-perf's options (nccl-tests' letters and long names) and the dtype and
 * op names, rejecting anything malformed so a typo never silently runs the wrong sweep.
 */
#include "perftest/args.h"

#include "perftest/perf.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    weft_dtype_t dtype;
} dtype_names[] = {
    {"int8", WEFT_INT8},         {"uint8", WEFT_UINT8},       {"int32", WEFT_INT32},
    {"uint32", WEFT_UINT32},     {"int64", WEFT_INT64},       {"uint64", WEFT_UINT64},
    {"float16", WEFT_FLOAT16},   {"bfloat16", WEFT_BFLOAT16}, {"float32", WEFT_FLOAT32},
    {"float64", WEFT_FLOAT64},
    /* nccl-tests spellings */
    {"char", WEFT_INT8},         {"int", WEFT_INT32},         {"uint", WEFT_UINT32},
    {"half", WEFT_FLOAT16},      {"float", WEFT_FLOAT32},     {"double", WEFT_FLOAT64},
};

static const struct {
    const char *name;
    weft_op_t op;
} op_names[] = {
    {"sum", WEFT_SUM}, {"prod", WEFT_PROD}, {"min", WEFT_MIN}, {"max", WEFT_MAX}, {"avg", WEFT_AVG},
};

bool perf_dtype_parse(const char *name, weft_dtype_t *dtype)
{
    for (size_t i = 0; i < sizeof(dtype_names) / sizeof(dtype_names[0]); i++) {
        if (strcasecmp(name, dtype_names[i].name) == 0) {
            *dtype = dtype_names[i].dtype;
            return true;
        }
    }
    return false;
}

bool perf_op_parse(const char *name, weft_op_t *op)
{
    for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++) {
        if (strcasecmp(name, op_names[i].name) == 0) {
            *op = op_names[i].op;
            return true;
        }
    }
    return false;
}

/* "64", "4K", "256M", "1G" (powers of 1024, an optional trailing B). */
bool perf_parse_bytes(const char *text, size_t *out)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)text[0]))
        return false;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0)
        return false;
    unsigned shift = 0;
    switch (toupper((unsigned char)*end)) {
    case 'K': shift = 10; end++; break;
    case 'M': shift = 20; end++; break;
    case 'G': shift = 30; end++; break;
    case 'T': shift = 40; end++; break;
    default: break;
    }
    if (toupper((unsigned char)*end) == 'B')
        end++;
    if (*end != '\0' || v > (SIZE_MAX >> shift))
        return false;
    *out = (size_t)v << shift;
    return true;
}

static bool parse_int(const char *text, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

void perf_args_usage(FILE *out)
{
    fprintf(out,
            "options:\n"
            "  -b, --minbytes N      smallest size in bytes, K/M/G suffixes (default 32M)\n"
            "  -e, --maxbytes N      largest size in bytes (default 32M)\n"
            "  -f, --stepfactor N    multiply the size by N each step (default 2)\n"
            "  -n, --iters N         timed iterations per size (default 20)\n"
            "  -w, --warmup_iters N  untimed iterations per size (default 5)\n"
            "  -c, --check 0|1       verify results once per size (default 1)\n"
            "  -d, --datatype T      int8 uint8 int32 uint32 int64 uint64 float16 bfloat16\n"
            "                        float32 float64 (or half float double int; default "
            "float32)\n"
            "  -o, --op OP           sum prod min max avg (default sum)\n"
            "  -r, --root R          root of broadcast and reduce (default 0)\n"
            "      --gpu             device buffers: cudaMalloc'd on GPU (local rank mod GPUs),\n"
            "                        calls on a non-default stream, timed by CUDA events on it\n"
            "      --fake-gpu        test aid: --gpu's copies and checks with host memory as\n"
            "                        the device and blocking calls, for hosts without a GPU\n"
            "      --csv             rows as CSV with a header line\n"
            "      --json            one JSON object with an array of rows\n"
            "      --plot FILE       bandwidth and time against size, FILE.svg or .png (gnuplot)\n"
            "      --verbose         (table) per size, the algorithm chosen, its chunk, the\n"
            "                        cost model's predicted time and the measured one\n"
            "  -h, --help            this text\n"
            "point-to-point tests (send_bw send_lat write_bw write_lat read_bw read_lat;\n"
            "2 ranks: rank 0 the server, rank 1 the client), with perftest's options:\n"
            "  -s, --size N          message size, K/M/G suffixes (default 65536 bw, 2 lat)\n"
            "  -a, --all             every size from 2 B to 8 MiB by powers of two\n"
            "  -n, --iters N         iterations per size (default 5000 bw, 1000 lat; fewer\n"
            "                        for big sizes unless -n is given)\n"
            "  -b, --bidirectional   both ranks send at once (bw tests)\n"
            "  -t, --tx-depth N      messages in flight in the bw tests (default 128)\n"
            "      --report_gbits    bandwidth in Gb/sec instead of MB/sec\n"
            "  -d, --ib-dev DEV, -i, --ib-port PORT, -x, --gid-index N\n"
            "                        RDMA device, port and GID of the verbs transport\n"
            "                        (WEFT_IB_HCA, WEFT_IB_GID_INDEX); write_* and read_*\n"
            "                        move large messages by RDMA WRITE or READ over verbs\n"
            "      --csv, --json     as above (host buffers only: --gpu is refused)\n"
            "      --json FILE.json  also save the run's record (host, port, generation,\n"
            "                        rates) for 'weft-perf links --compare'\n"
            "      --plot FILE       bandwidth or latency against size, .svg or .png\n"
            "      --line-rate G     compare bandwidth with G Gb/s instead of the port's rate\n"
            "without a launcher, as perftest (docs/perftest.md):\n"
            "  weft-perf TEST [options]        the server: waits for one client on -p\n"
            "  weft-perf TEST [options] HOST   the client: connects to the server on HOST\n"
            "  -p, --port N          TCP port of the server (default 18515)\n"
            "      --secret-file F   shared secret in F (else WEFT_SECRET; without either the\n"
            "                        test runs unauthenticated and says so)\n"
            "other subcommands: weft-perf links --help, weft-perf fabric --help\n");
}

static const char *const p2p_cmds[] = {"send_bw",  "send_lat", "write_bw",
                                       "write_lat", "read_bw",  "read_lat"};

bool perf_args_is_p2p(const char *cmd)
{
    for (size_t i = 0; i < sizeof(p2p_cmds) / sizeof(p2p_cmds[0]); i++) {
        if (strcmp(cmd, p2p_cmds[i]) == 0)
            return true;
    }
    return false;
}

static bool plot_name_ok(const char *file)
{
    size_t n = strlen(file);
    return n > 4 && (strcmp(file + n - 4, ".svg") == 0 || strcmp(file + n - 4, ".png") == 0);
}

static enum perf_args_status bad(char *why, size_t why_len, const char *fmt, const char *what)
{
    snprintf(why, why_len, fmt, what);
    return PERF_ARGS_BAD;
}

/* getopt's complaint about the option it just stopped at. */
static enum perf_args_status bad_option(char *why, size_t why_len, int c, char **argv)
{
    const char *fmt = c == ':' ? "option '%s' needs a value" : "unknown option '%s'";
    if (optopt != 0) {
        char opt[3] = {'-', (char)optopt, '\0'};
        return bad(why, why_len, fmt, opt);
    }
    return bad(why, why_len, fmt, argv[optind - 1]);
}

/* perftest's letters differ from nccl-tests' (-b is bidirectional, -d a device), so the
 * point-to-point tests get their own table; argv[0] is the subcommand. */
static enum perf_args_status parse_p2p(int argc, char **argv, struct perf_args *a, char *why,
                                       size_t why_len)
{
    static const struct option longopts[] = {
        {"size", required_argument, NULL, 's'},
        {"all", no_argument, NULL, 'a'},
        {"iters", required_argument, NULL, 'n'},
        {"bidirectional", no_argument, NULL, 'b'},
        {"tx-depth", required_argument, NULL, 't'},
        {"report_gbits", no_argument, NULL, 'G'},
        {"ib-dev", required_argument, NULL, 'd'},
        {"ib-port", required_argument, NULL, 'i'},
        {"gid-index", required_argument, NULL, 'x'},
        {"csv", no_argument, NULL, 'C'},
        {"json", optional_argument, NULL, 'J'},
        {"port", required_argument, NULL, 'p'},
        {"secret-file", required_argument, NULL, 'S'},
        {"line-rate", required_argument, NULL, 'L'},
        {"plot", required_argument, NULL, 'P'},
        {"gpu", no_argument, NULL, 'U'},
        {"fake-gpu", no_argument, NULL, 'U'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long v;
    int c;
    a->p2p = true;
    a->iters = 0; /* the test's default, chosen in p2p.c */
    a->warmup = 0;
    a->gid_index = -1;
    opterr = 0;
    optind = 1;
    bool json_flag = false;
    while ((c = getopt_long(argc, argv, ":s:an:bt:d:i:x:p:h", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (!perf_parse_bytes(optarg, &a->size) || a->size == 0)
                return bad(why, why_len, "bad size '%s'", optarg);
            break;
        case 'a': a->all_sizes = true; break;
        case 'n':
            if (!parse_int(optarg, 1, 1 << 30, &v))
                return bad(why, why_len, "bad iteration count '%s' (>= 1)", optarg);
            a->iters = (int)v;
            a->iters_given = true;
            break;
        case 'b': a->bidir = true; break;
        case 't':
            if (!parse_int(optarg, 1, 1 << 16, &v))
                return bad(why, why_len, "bad tx depth '%s' (1..65536)", optarg);
            a->tx_depth = (int)v;
            break;
        case 'G': a->report_gbits = true; break;
        case 'd': a->ib_dev = optarg; break;
        case 'i':
            if (!parse_int(optarg, 1, 255, &v))
                return bad(why, why_len, "bad port '%s' (1..255)", optarg);
            a->ib_port = (int)v;
            break;
        case 'x':
            if (!parse_int(optarg, 0, 255, &v))
                return bad(why, why_len, "bad GID index '%s' (0..255)", optarg);
            a->gid_index = (int)v;
            break;
        case 'C': a->format = PERF_FORMAT_CSV; break;
        case 'J':
            if (optarg != NULL)
                a->record_file = optarg;
            else
                json_flag = true;
            break;
        case 'p':
            if (!parse_int(optarg, 1, 65535, &v))
                return bad(why, why_len, "bad port '%s' (1..65535)", optarg);
            a->port = (int)v;
            break;
        case 'S': a->secret_file = optarg; break;
        case 'L': {
            char *end;
            a->line_rate_gbits = strtod(optarg, &end);
            if (end == optarg || *end != '\0' || !(a->line_rate_gbits > 0.0))
                return bad(why, why_len, "bad line rate '%s' (Gb/s, > 0)", optarg);
            break;
        }
        case 'P':
            if (!plot_name_ok(optarg))
                return bad(why, why_len, "--plot %s: the name must end in .svg or .png", optarg);
            a->plot_file = optarg;
            break;
        /* Their buffers are registered with the net for zero-copy (weft_mem_register),
         * which device memory is not yet; sendrecv times device buffers instead. */
        case 'U':
            return bad(why, why_len,
                       "%s: the point-to-point tests use host buffers only; time device "
                       "buffers with 'weft-perf sendrecv --gpu'",
                       argv[0]);
        case 'h': return PERF_ARGS_HELP;
        default: return bad_option(why, why_len, c, argv);
        }
    }
    /* What getopt left: "--json FILE.json" (perftest users type the space) and the server's
     * HOST, in either order. */
    for (; optind < argc; optind++) {
        const char *arg = argv[optind];
        size_t n = strlen(arg);
        if (json_flag && a->record_file == NULL && n > 5 && strcmp(arg + n - 5, ".json") == 0)
            a->record_file = arg;
        else if (a->server_host == NULL)
            a->server_host = arg;
        else
            return bad(why, why_len, "unexpected argument '%s' (one server HOST at most)", arg);
    }
    if (json_flag && a->record_file == NULL)
        a->format = PERF_FORMAT_JSON;
    if (a->all_sizes && a->size != 0)
        return bad(why, why_len, "%s", "-a and -s exclude each other");
    return PERF_ARGS_OK;
}

enum perf_args_status perf_args_parse(int argc, char **argv, struct perf_args *args, char *why,
                                      size_t why_len)
{
    static const struct option longopts[] = {
        {"minbytes", required_argument, NULL, 'b'},
        {"maxbytes", required_argument, NULL, 'e'},
        {"stepfactor", required_argument, NULL, 'f'},
        {"iters", required_argument, NULL, 'n'},
        {"warmup_iters", required_argument, NULL, 'w'},
        {"check", required_argument, NULL, 'c'},
        {"datatype", required_argument, NULL, 'd'},
        {"op", required_argument, NULL, 'o'},
        {"root", required_argument, NULL, 'r'},
        {"csv", no_argument, NULL, 'C'},
        {"json", no_argument, NULL, 'J'},
        {"gpu", no_argument, NULL, 'U'},
        {"fake-gpu", no_argument, NULL, 'F'},
        {"plot", required_argument, NULL, 'P'},
        {"verbose", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct perf_args a = {
        .minbytes = 32u << 20,
        .maxbytes = 32u << 20,
        .stepfactor = 2,
        .iters = 20,
        .warmup = 5,
        .check = true,
        .dtype = WEFT_FLOAT32,
        .op = WEFT_SUM,
        .root = 0,
        .format = PERF_FORMAT_TABLE,
    };
    why[0] = '\0';
    if (argc < 2)
        return bad(why, why_len, "%s", "no subcommand given");
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
        return PERF_ARGS_HELP;
    if (argv[1][0] == '-')
        return bad(why, why_len, "the subcommand comes first, not '%s'", argv[1]);
    a.cmd = argv[1];

    /* getopt sees the subcommand as argv[0], so options follow it naturally. */
    int sub_argc = argc - 1;
    char **sub_argv = argv + 1;
    if (perf_args_is_p2p(a.cmd)) {
        enum perf_args_status st = parse_p2p(sub_argc, sub_argv, &a, why, why_len);
        if (st == PERF_ARGS_OK)
            *args = a;
        return st;
    }
    bool have_min = false, have_max = false;
    long v;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(sub_argc, sub_argv, ":b:e:f:n:w:c:d:o:r:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (!perf_parse_bytes(optarg, &a.minbytes))
                return bad(why, why_len, "bad size '%s'", optarg);
            have_min = true;
            break;
        case 'e':
            if (!perf_parse_bytes(optarg, &a.maxbytes))
                return bad(why, why_len, "bad size '%s'", optarg);
            have_max = true;
            break;
        case 'f':
            if (!parse_int(optarg, 2, 1 << 20, &v))
                return bad(why, why_len, "bad step factor '%s' (an integer >= 2)", optarg);
            a.stepfactor = (size_t)v;
            break;
        case 'n':
            if (!parse_int(optarg, 1, 1 << 30, &v))
                return bad(why, why_len, "bad iteration count '%s' (>= 1)", optarg);
            a.iters = (int)v;
            break;
        case 'w':
            if (!parse_int(optarg, 0, 1 << 30, &v))
                return bad(why, why_len, "bad warmup count '%s' (>= 0)", optarg);
            a.warmup = (int)v;
            break;
        case 'c':
            if (!parse_int(optarg, 0, 1, &v))
                return bad(why, why_len, "bad check flag '%s' (0 or 1)", optarg);
            a.check = v != 0;
            break;
        case 'd':
            if (!perf_dtype_parse(optarg, &a.dtype))
                return bad(why, why_len, "unknown datatype '%s'", optarg);
            break;
        case 'o':
            if (!perf_op_parse(optarg, &a.op))
                return bad(why, why_len, "unknown op '%s'", optarg);
            break;
        case 'r':
            if (!parse_int(optarg, 0, INT32_MAX, &v))
                return bad(why, why_len, "bad root '%s'", optarg);
            a.root = (int)v;
            break;
        case 'C':
            a.format = PERF_FORMAT_CSV;
            break;
        case 'J':
            a.format = PERF_FORMAT_JSON;
            break;
        case 'V':
            a.verbose = true;
            break;
        case 'U':
        case 'F':
            v = c == 'U' ? PERF_MEM_CUDA : PERF_MEM_FAKE;
            if (a.memory != PERF_MEM_HOST && a.memory != (enum perf_memory)v)
                return bad(why, why_len, "%s", "--gpu and --fake-gpu exclude each other");
            a.memory = (enum perf_memory)v;
            break;
        case 'P':
            if (!plot_name_ok(optarg))
                return bad(why, why_len, "--plot %s: the name must end in .svg or .png", optarg);
            a.plot_file = optarg;
            break;
        case 'h':
            return PERF_ARGS_HELP;
        case ':':
            if (optopt != 0) {
                char opt[3] = {'-', (char)optopt, '\0'};
                return bad(why, why_len, "option '%s' needs a value", opt);
            }
            return bad(why, why_len, "option '%s' needs a value", sub_argv[optind - 1]);
        default:
            if (optopt != 0) {
                char opt[3] = {'-', (char)optopt, '\0'};
                return bad(why, why_len, "unknown option '%s'", opt);
            }
            return bad(why, why_len, "unknown option '%s'", sub_argv[optind - 1]);
        }
    }
    if (optind < sub_argc)
        return bad(why, why_len, "unexpected argument '%s'", sub_argv[optind]);
    /* As nccl-tests: one bound alone keeps the other's default unless they would cross. */
    if (have_min && !have_max && a.maxbytes < a.minbytes)
        a.maxbytes = a.minbytes;
    if (have_max && !have_min && a.minbytes > a.maxbytes)
        a.minbytes = a.maxbytes;
    if (a.minbytes == 0)
        return bad(why, why_len, "%s", "-b must be at least 1 byte");
    if (a.minbytes > a.maxbytes)
        return bad(why, why_len, "%s", "-b is larger than -e");
    *args = a;
    return PERF_ARGS_OK;
}
