package authz

import (
	"encoding/binary"
	"hash/maphash"
	"slices"
	"sync/atomic"

	"github.com/cedar-policy/cedar-go/types"

	"ztproxy/identity"
)

// recordCacheSlots is the number of entries of each recordCache. Requests
// of one session repeat most context sub-records (identity, device, risk,
// the hour), so a small cache avoids most record construction.
const recordCacheSlots = 1024

// valueCache remembers Cedar values by the exact inputs they were built
// from. It is direct-mapped: a colliding entry simply replaces the older
// one, so memory stays bounded and no lock is taken. Entries are compared by
// their full key, never by hash alone, so a hit is always the record those
// inputs build.
type valueCache[T any] struct {
	seed  maphash.Seed
	slots [recordCacheSlots]atomic.Pointer[cachedValue[T]]
}

// recordCache caches context records.
type recordCache = valueCache[types.Record]

type cachedValue[T any] struct {
	key   string
	value T
}

func newValueCache[T any]() *valueCache[T] {
	return &valueCache[T]{seed: maphash.MakeSeed()}
}

func newRecordCache() *recordCache { return newValueCache[types.Record]() }

// get returns the value cached under key and the slot key belongs in.
func (c *valueCache[T]) get(key []byte) (T, uint64, bool) {
	slot := maphash.Bytes(c.seed, key) % recordCacheSlots
	if e := c.slots[slot].Load(); e != nil && e.key == string(key) {
		return e.value, slot, true
	}
	var zero T
	return zero, slot, false
}

// put caches value under key in slot.
func (c *valueCache[T]) put(slot uint64, key []byte, value T) {
	c.slots[slot].Store(&cachedValue[T]{key: string(key), value: value})
}

// The append functions below encode context inputs into a cache key. Every
// variable-length item is length-prefixed, so the encoding is injective.

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

func appendInt(buf []byte, n int64) []byte { return binary.AppendVarint(buf, n) }

func appendBool(buf []byte, b bool) []byte {
	if b {
		return append(buf, 1)
	}
	return append(buf, 0)
}

func appendIP(buf []byte, ip types.IPAddr) []byte {
	addr := ip.Addr().As16()
	buf = append(buf, addr[:]...)
	return append(buf, byte(ip.Addr().BitLen()), byte(ip.Prefix().Bits()))
}

func appendStrings(buf []byte, values []string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(values)))
	for _, v := range values {
		buf = appendString(buf, v)
	}
	return buf
}

func appendRiskCodes(buf []byte, reasons []identity.RiskReason) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(reasons)))
	for _, r := range reasons {
		buf = appendString(buf, r.Code)
	}
	return buf
}

// appendStringMap encodes a map in key order, so equal maps give equal keys.
func appendStringMap(buf []byte, m map[string]string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(m)))
	var small [8]string
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		buf = appendString(buf, k)
		buf = appendString(buf, m[k])
	}
	return buf
}
