package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"sync"
)

// keyCacheSize bounds the derived-key cache. A node has a handful of access
// keys, and each is used with one or two dates (around midnight UTC) and
// usually one region and service, so this holds every live key many times
// over.
const keyCacheSize = 64

// scopeKey names one derived signing key. It holds the secret itself, so that
// a rotated secret never finds the key derived from the old one.
type scopeKey struct {
	secret, date, region, service string
}

// keyCache holds derived signing keys. Only keys that verified a request are
// added, so a client with a valid access key id but no secret cannot churn
// it. When full, an arbitrary entry is evicted.
type keyCache struct {
	mu sync.RWMutex
	m  map[scopeKey][sha256.Size]byte
}

func (c *keyCache) get(k scopeKey) ([sha256.Size]byte, bool) {
	c.mu.RLock()
	key, ok := c.m[k]
	c.mu.RUnlock()
	return key, ok
}

func (c *keyCache) put(k scopeKey, key [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[scopeKey][sha256.Size]byte)
	}
	if _, ok := c.m[k]; !ok && len(c.m) >= keyCacheSize {
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[k] = key
}

func (c *keyCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// deriveKey computes the SigV4 signing key:
// HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request").
func deriveKey(secret, date, region, service string) [sha256.Size]byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	k = hmacSHA256(k, terminator)
	var out [sha256.Size]byte
	copy(out[:], k)
	return out
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
