/*
 * The ZeroMQ fast reader's scanner in C (src/parse/zmq-fast.ts drives it;
 * without this addon every message takes the general path, JSON.parse and
 * zmq-item.ts, with the same results). It reads a JSON
 * array (or one object) of plain status items from inflated bytes into the
 * caller's typed arrays, one pass, no allocation:
 *
 *   zmqScan(buf, start, end, seed, types, values, rates, nameOff, nameLen, nameHash
 *           [, entries, slots, slotHash, entryOff, entryNameLen, entryTagLen, arena, maxProbe])
 *     -> n items, -1 when the message is not one the fast path takes (the
 *        general path reads it: JSON.parse and zmq-item.ts), -2 when the
 *        arrays hold fewer than n (grow them and call again); with the intern
 *        table's arrays (key-intern.ts lookupTables()) it also looks each name
 *        up as KeyInternTable.find does: entries[i], or -1 (see ZmqScan)
 *
 * An item is `{...}` with members name (a string of printable ASCII, no
 * escapes), value (a finite JSON number), and optionally type ("c", "g",
 * "ms", "h", "d" or null), time (null or a number in (0, 1e11)), rate (null
 * or a number in (0, 1]); any other member whose value is a string, a
 * number, true, false or null is skipped. Anything else (tags, a set, an
 * escape, a nested value, a duplicated member, a negative "ms", bad JSON)
 * gives -1. types[i]: 1 counter, 2 gauge, 3 ms, 4 h/d. nameHash[i] is the
 * 32-bit FNV-1a of the name bytes from `seed`, as key-intern.ts computes it.
 * Numbers are parsed as JSON.parse does: correctly rounded (strtod), once
 * the token has been checked against JSON's grammar here; strtod must then
 * end exactly at the token's end (it would not under a locale whose decimal
 * point is not '.'), else the message goes to the general path.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <node_api.h>

#include "tallyd.h"

#define T_COUNTER 1
#define T_GAUGE 2
#define T_TIMER 3
#define T_HISTOGRAM 4

#define M_NAME 1
#define M_VALUE 2
#define M_TIME 4
#define M_TYPE 8
#define M_RATE 16

#define FNV_PRIME 0x01000193u
#define MAX_TIME 1e11
#define NOT_FAST -1
#define NO_ROOM -2

typedef struct {
  const uint8_t *b;
  size_t p;
  size_t end;
} scan_t;

static inline int peek(const scan_t *s) { return s->p < s->end ? s->b[s->p] : -1; }

static inline void skip_ws(scan_t *s) {
  while (s->p < s->end) {
    uint8_t c = s->b[s->p];
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') return;
    s->p++;
  }
}

/* A plain string's contents start at s->p; moves past its closing quote. 0 for an escape, a control or non-ASCII byte. */
static int skip_string(scan_t *s) {
  while (s->p < s->end) {
    uint8_t c = s->b[s->p++];
    if (c == '"') return 1;
    if (c < 0x20 || c >= 0x7f || c == '\\') return 0;
  }
  return 0;
}

/* A JSON number at s->p into *out (finite); moves past it. */
static int number(scan_t *s, double *out) {
  size_t start = s->p;
  const uint8_t *b = s->b;
  size_t p = s->p, end = s->end;
  int neg = 0;
  if (p < end && b[p] == '-') {
    neg = 1;
    p++;
  }
  if (p >= end) return 0;
  uint64_t mant = 0;
  if (b[p] == '0') {
    p++;
  } else if (b[p] >= '1' && b[p] <= '9') {
    while (p < end && b[p] >= '0' && b[p] <= '9') mant = mant * 10 + (uint64_t)(b[p++] - '0');
  } else {
    return 0;
  }
  int plain = 1;
  if (p < end && b[p] == '.') {
    plain = 0;
    size_t f = ++p;
    while (p < end && b[p] >= '0' && b[p] <= '9') p++;
    if (p == f) return 0;
  }
  if (p < end && (b[p] == 'e' || b[p] == 'E')) {
    plain = 0;
    p++;
    if (p < end && (b[p] == '+' || b[p] == '-')) p++;
    size_t x = p;
    while (p < end && b[p] >= '0' && b[p] <= '9') p++;
    if (p == x) return 0;
  }
  size_t len = p - start;
  double v;
  if (plain && len - (size_t)neg <= 15) {
    v = (double)mant; /* exact below 2^53 */
    if (neg) v = -v;
  } else {
    char tmp[72];
    if (len >= sizeof tmp) return 0; /* the general path takes very long numbers */
    memcpy(tmp, b + start, len);
    tmp[len] = 0;
    char *stop = NULL;
    v = strtod(tmp, &stop);
    if (stop != tmp + len) return 0; /* strtod read something else than the token (a locale's decimal point) */
  }
  if (!isfinite(v)) return 0;
  *out = v;
  s->p = p;
  return 1;
}

/*
 * A time that is a plain integer of 1 to 11 digits without a leading zero, followed by no '.', 'e' or 'E': it is
 * then in (0, 1e11), as the general path requires; moves past it. 0 (nothing moved) for anything else, which
 * number() then reads. Checked, never used when aggregating, so no value is computed.
 */
static int plain_time(scan_t *s) {
  const uint8_t *b = s->b;
  size_t p = s->p, end = s->end;
  if (p >= end || b[p] < '1' || b[p] > '9') return 0;
  size_t q = p + 1;
  while (q < end && b[q] >= '0' && b[q] <= '9') q++;
  if (q - p > 11 || (q < end && (b[q] == '.' || b[q] == 'e' || b[q] == 'E'))) return 0;
  s->p = q;
  return 1;
}

static int is_null(const scan_t *s) {
  return s->p + 4 <= s->end && memcmp(s->b + s->p, "null", 4) == 0;
}

/* The value of a member the fast path ignores: a plain string, a number, true, false or null. */
static int skip_scalar(scan_t *s) {
  int c = peek(s);
  if (c == '"') {
    s->p++;
    return skip_string(s);
  }
  if (c == '-' || (c >= '0' && c <= '9')) {
    double ignored;
    return number(s, &ignored);
  }
  static const char *const words[] = {"true", "false", "null"};
  for (int i = 0; i < 3; i++) {
    size_t n = strlen(words[i]);
    if (s->p + n <= s->end && memcmp(s->b + s->p, words[i], n) == 0) {
      s->p += n;
      return 1;
    }
  }
  return 0;
}

typedef struct {
  uint8_t *types;
  double *values;
  double *rates;
  int32_t *name_off;
  int32_t *name_len;
  int32_t *name_hash;
  size_t cap;
  size_t count;
  uint32_t seed;
  int overflow;
} items_t;

/* Matches `<word>"` at b + p (after the opening quote of a member name). */
static inline int key_is(const scan_t *s, size_t p, const char *word, size_t n) {
  return p + n + 1 <= s->end && memcmp(s->b + p, word, n) == 0 && s->b[p + n] == '"';
}

/* One `{...}` at s->p; 1 and the item appended, or 0. */
static int read_item(scan_t *s, items_t *it) {
  int seen = 0, type = T_GAUGE;
  double value = 0, rate = 1;
  int32_t noff = 0, nlen = 0;
  uint32_t hash = 0;
  s->p++; /* '{' */
  for (;;) {
    skip_ws(s);
    if (peek(s) != '"') return 0;
    size_t k = s->p + 1;
    int member = 0;
    int first = k < s->end ? s->b[k] : 0;
    if (first == 'n' && key_is(s, k, "name", 4)) {
      member = M_NAME;
      s->p = k + 5;
    } else if (first == 'v' && key_is(s, k, "value", 5)) {
      member = M_VALUE;
      s->p = k + 6;
    } else if (first == 't' && key_is(s, k, "time", 4)) {
      member = M_TIME;
      s->p = k + 5;
    } else if (first == 't' && key_is(s, k, "type", 4)) {
      member = M_TYPE;
      s->p = k + 5;
    } else if (first == 'r' && key_is(s, k, "rate", 4)) {
      member = M_RATE;
      s->p = k + 5;
    } else if (first == 't' && key_is(s, k, "tags", 4)) {
      return 0; /* tags: the general path */
    } else {
      s->p = k;
      if (!skip_string(s)) return 0;
    }
    if (member != 0) {
      if (seen & member) return 0; /* a duplicate: JSON.parse keeps the last one */
      seen |= member;
    }
    skip_ws(s);
    if (peek(s) != ':') return 0;
    s->p++;
    skip_ws(s);
    if (s->p >= s->end) return 0;

    if (member == M_NAME) {
      if (s->b[s->p] != '"') return 0;
      size_t start = ++s->p;
      uint32_t h = it->seed;
      for (;;) {
        if (s->p >= s->end) return 0;
        uint8_t c = s->b[s->p];
        if (c == '"') break;
        if (c < 0x20 || c >= 0x7f || c == '\\') return 0;
        h = (h ^ c) * FNV_PRIME;
        s->p++;
      }
      if (s->p == start) return 0; /* an empty name */
      noff = (int32_t)start;
      nlen = (int32_t)(s->p - start);
      hash = h;
      s->p++;
    } else if (member == M_VALUE) {
      if (!number(s, &value)) return 0; /* a string value is a set member: the general path */
    } else if (member == M_TYPE) {
      if (is_null(s)) {
        s->p += 4;
      } else {
        if (s->b[s->p] != '"') return 0;
        const uint8_t *t = s->b + s->p + 1;
        size_t left = s->end - s->p - 1;
        if (left >= 2 && t[1] == '"') {
          if (t[0] == 'c') type = T_COUNTER;
          else if (t[0] == 'g') type = T_GAUGE;
          else if (t[0] == 'h' || t[0] == 'd') type = T_HISTOGRAM;
          else return 0; /* unknown, or a set (s) */
          s->p += 3;
        } else if (left >= 3 && t[0] == 'm' && t[1] == 's' && t[2] == '"') {
          type = T_TIMER;
          s->p += 4;
        } else {
          return 0;
        }
      }
    } else if (member == M_TIME) {
      if (is_null(s)) {
        s->p += 4;
      } else if (!plain_time(s)) {
        double t;
        if (!number(s, &t) || !(t > 0 && t < MAX_TIME)) return 0; /* checked, not used when aggregating */
      }
    } else if (member == M_RATE) {
      if (is_null(s)) {
        s->p += 4;
      } else if (!number(s, &rate) || !(rate > 0 && rate <= 1)) {
        return 0;
      }
    } else if (!skip_scalar(s)) {
      return 0;
    }

    skip_ws(s);
    int c = peek(s);
    s->p++;
    if (c == '}') break;
    if (c != ',') return 0;
  }
  if ((seen & (M_NAME | M_VALUE)) != (M_NAME | M_VALUE)) return 0;
  if (type == T_TIMER && value < 0) return 0;
  if (it->count < it->cap) {
    size_t i = it->count;
    it->types[i] = (uint8_t)type;
    it->values[i] = value;
    it->rates[i] = rate;
    it->name_off[i] = noff;
    it->name_len[i] = nlen;
    it->name_hash[i] = (int32_t)hash;
  } else {
    it->overflow = 1; /* keep validating: a message the fast path cannot take says so before "no room" */
  }
  it->count++;
  return 1;
}

static int scan_message(scan_t *s, items_t *it) {
  skip_ws(s);
  int c = peek(s);
  if (c == '{') {
    if (!read_item(s, it)) return 0;
  } else if (c == '[') {
    s->p++;
    skip_ws(s);
    if (peek(s) == ']') {
      s->p++;
    } else {
      for (;;) {
        if (peek(s) != '{' || !read_item(s, it)) return 0;
        skip_ws(s);
        int d = peek(s);
        s->p++;
        if (d == ']') break;
        if (d != ',') return 0;
        skip_ws(s);
      }
    }
  } else {
    return 0;
  }
  skip_ws(s);
  return s->p == s->end;
}

static int typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *len) {
  napi_typedarray_type type;
  return napi_get_typedarray_info(env, v, &type, len, data, NULL, NULL) == napi_ok && type == want;
}

/* key-intern.ts finishHash(nameHash, tagHash), in uint32 arithmetic (Math.imul and >>> are the same). */
static uint32_t finish_hash(uint32_t name_hash, uint32_t tag_hash) {
  uint32_t h = name_hash ^ (tag_hash * 0x9e3779b1u);
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

/* The intern table's arrays (key-intern.ts), for looking the names up in C as KeyIntern.find does. */
typedef struct {
  int32_t *entries; /* out: the entry of item i, or -1 (JavaScript resolves it) */
  size_t n_entries;
  const int32_t *slots, *slot_hash, *entry_off, *entry_name_len, *entry_tag_len;
  size_t n_slots, n_slot_hash, n_entry_off, n_entry_name_len, n_entry_tag_len;
  const uint8_t *arena;
  size_t arena_len;
  uint32_t max_probe;
} intern_t;

static int32_t intern_find(const intern_t *in, const uint8_t *name, size_t len, uint32_t hash) {
  size_t mask = in->n_slots - 1;
  size_t i = hash & mask;
  for (uint32_t probe = 0; probe < in->max_probe; probe++) {
    int32_t e = in->slots[i];
    if (e == 0) break;
    if (i < in->n_slot_hash && (uint32_t)in->slot_hash[i] == hash) {
      size_t x = (size_t)(e - 1);
      if (e > 0 && x < in->n_entry_off && x < in->n_entry_name_len && x < in->n_entry_tag_len && (size_t)in->entry_name_len[x] == len &&
          in->entry_tag_len[x] == 0 && in->entry_off[x] >= 0 && (size_t)in->entry_off[x] + len <= in->arena_len &&
          memcmp(in->arena + in->entry_off[x], name, len) == 0) {
        return (int32_t)x;
      }
    }
    i = (i + 1) & mask;
  }
  return -1;
}

/*
 * zmqScan(buf, start, end, seed, types, values, rates, nameOff, nameLen, nameHash
 *         [, entries, slots, slotHash, entryOff, entryNameLen, entryTagLen, arena, maxProbe])
 * With the intern table's arrays (all eight more arguments) it also looks every name up as KeyIntern.find
 * would (seed must be the table's): entries[i] is the entry, or -1 for JavaScript to resolve (a new name).
 */
static napi_value ZmqScan(napi_env env, napi_callback_info info) {
  size_t argc = 18;
  napi_value argv[18];
  napi_value result;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 10) {
    napi_throw_type_error(env, "EINVAL", "zmqScan() takes 10 or 18 arguments");
    return NULL;
  }
  void *data;
  size_t blen;
  int64_t start, end;
  uint32_t seed;
  items_t it;
  memset(&it, 0, sizeof it);
  size_t n1, n2, n3, n4, n5, n6;
  if (napi_get_buffer_info(env, argv[0], &data, &blen) != napi_ok || napi_get_value_int64(env, argv[1], &start) != napi_ok ||
      napi_get_value_int64(env, argv[2], &end) != napi_ok || napi_get_value_uint32(env, argv[3], &seed) != napi_ok ||
      !typed(env, argv[4], napi_uint8_array, (void **)&it.types, &n1) || !typed(env, argv[5], napi_float64_array, (void **)&it.values, &n2) ||
      !typed(env, argv[6], napi_float64_array, (void **)&it.rates, &n3) || !typed(env, argv[7], napi_int32_array, (void **)&it.name_off, &n4) ||
      !typed(env, argv[8], napi_int32_array, (void **)&it.name_len, &n5) || !typed(env, argv[9], napi_int32_array, (void **)&it.name_hash, &n6) ||
      start < 0 || end < start || (size_t)end > blen) {
    napi_throw_type_error(env, "EINVAL", "zmqScan(): bad arguments");
    return NULL;
  }
  intern_t in;
  int lookup = argc >= 18;
  if (lookup) {
    memset(&in, 0, sizeof in);
    void *arena;
    if (!typed(env, argv[10], napi_int32_array, (void **)&in.entries, &in.n_entries) ||
        !typed(env, argv[11], napi_int32_array, (void **)&in.slots, &in.n_slots) ||
        !typed(env, argv[12], napi_int32_array, (void **)&in.slot_hash, &in.n_slot_hash) ||
        !typed(env, argv[13], napi_int32_array, (void **)&in.entry_off, &in.n_entry_off) ||
        !typed(env, argv[14], napi_int32_array, (void **)&in.entry_name_len, &in.n_entry_name_len) ||
        !typed(env, argv[15], napi_int32_array, (void **)&in.entry_tag_len, &in.n_entry_tag_len) ||
        napi_get_buffer_info(env, argv[16], &arena, &in.arena_len) != napi_ok || napi_get_value_uint32(env, argv[17], &in.max_probe) != napi_ok ||
        in.n_slots == 0 || (in.n_slots & (in.n_slots - 1)) != 0) {
      napi_throw_type_error(env, "EINVAL", "zmqScan(): bad intern table arguments");
      return NULL;
    }
    in.arena = (const uint8_t *)arena;
  }
  it.cap = n1;
  if (n2 < it.cap) it.cap = n2;
  if (n3 < it.cap) it.cap = n3;
  if (n4 < it.cap) it.cap = n4;
  if (n5 < it.cap) it.cap = n5;
  if (n6 < it.cap) it.cap = n6;
  if (lookup && in.n_entries < it.cap) it.cap = in.n_entries;
  it.seed = seed;
  scan_t s = {(const uint8_t *)data, (size_t)start, (size_t)end};
  int64_t out = scan_message(&s, &it) ? (it.overflow ? NO_ROOM : (int64_t)it.count) : NOT_FAST;
  if (lookup && out > 0) {
    const uint8_t *b = (const uint8_t *)data;
    for (int64_t i = 0; i < out; i++) {
      uint32_t h = finish_hash((uint32_t)it.name_hash[i], seed);
      in.entries[i] = intern_find(&in, b + it.name_off[i], (size_t)it.name_len[i], h);
    }
  }
  napi_create_int64(env, out, &result);
  return result;
}

int tallyd_zmq_scan_init(napi_env env, napi_value exports) {
  napi_property_descriptor prop = {"zmqScan", NULL, ZmqScan, NULL, NULL, NULL, napi_default, NULL};
  return napi_define_properties(env, exports, 1, &prop) == napi_ok;
}
