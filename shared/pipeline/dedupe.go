package pipeline

import (
	"crypto/sha256"
	"net/url"
	"strings"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/queue"
)

// A URL listed more than once in a request (one photo under 300 product
// variants) is fetched, compressed and stored once: its first occurrence's
// message carries the others as copies, and each copy is recorded with
// that outcome. Counts stay per occurrence.

// maxRefsPerMessage bounds the images one message records (the first and
// its copies): each is a Firestore write, and one delivery's writes must
// fit its time. A URL listed more often is fetched once per this many.
const maxRefsPerMessage = 100

// urlKey identifies a URL for deduplication. Forms that fetch the same
// resource share a key: scheme and host in any case, a default port
// written out or not, and any fragment (never sent to the host). A URL
// that does not parse is its own key.
func urlKey(raw string) [16]byte {
	norm := raw
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		u.Scheme = strings.ToLower(u.Scheme)
		host, port := strings.ToLower(u.Hostname()), u.Port()
		if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
			port = ""
		}
		u.Host = host
		if strings.Contains(host, ":") {
			u.Host = "[" + host + "]"
		}
		if port != "" {
			u.Host += ":" + port
		}
		u.Fragment, u.RawFragment = "", ""
		norm = u.String()
	}
	sum := sha256.Sum256([]byte(norm))
	var k [16]byte
	copy(k[:], sum[:16])
	return k
}

// urlIndex records, in input order, the first occurrence of every URL of
// a request and the later occurrences of each. Its memory is about 40
// bytes a distinct URL (a truncated SHA-256, which two different URLs
// share with probability 2^-128), plus 24 bytes a repeat.
type urlIndex struct {
	first  map[[16]byte]int32 // key → index into firsts
	firsts []batch.ShardedRef
	copies map[int32][]batch.ShardedRef
	images int // running image index: the next image's
}

func newURLIndex() *urlIndex {
	return &urlIndex{first: map[[16]byte]int32{}, copies: map[int32][]batch.ShardedRef{}}
}

// add indexes product p (its position in the input) without shards; they
// are assigned by setShards once the total is known.
func (x *urlIndex) add(p int, urls []string) {
	for u, raw := range urls {
		ref := batch.ShardedRef{ImageRef: batch.ImageRef{Product: p, URL: u}, Shard: x.images}
		x.images++
		k := urlKey(raw)
		if g, ok := x.first[k]; ok {
			x.copies[g] = append(x.copies[g], ref)
			continue
		}
		x.first[k] = int32(len(x.firsts))
		x.firsts = append(x.firsts, ref)
	}
}

// setShards turns the running image indexes stored as shards into shards.
func (x *urlIndex) setShards(shards int) {
	for i := range x.firsts {
		x.firsts[i].Shard = batch.ImageShard(x.firsts[i].Shard, shards)
	}
	for _, cs := range x.copies {
		for i := range cs {
			cs[i].Shard = batch.ImageShard(cs[i].Shard, shards)
		}
	}
}

// groupMessages splits the images of one URL into messages of at most
// maxRefsPerMessage images: the first of each is fetched, the rest are its
// copies.
func groupMessages(base queue.ImageMessage, url string, refs []batch.ShardedRef) []queue.ImageMessage {
	var out []queue.ImageMessage
	for lo := 0; lo < len(refs); lo += maxRefsPerMessage {
		part := refs[lo:min(lo+maxRefsPerMessage, len(refs))]
		m := base
		m.Image, m.Shard, m.URL = part[0].ImageRef, part[0].Shard, url
		if len(part) > 1 {
			m.Copies = append([]batch.ShardedRef(nil), part[1:]...)
		}
		out = append(out, m)
	}
	return out
}

// indexingStaging is an upload whose URLs are indexed as its products are
// added, so Submit knows every repeat before it publishes the first.
type indexingStaging struct {
	batch.Staging
	index    *urlIndex
	products int
}

func (st *indexingStaging) Add(p batch.Product) error {
	if err := st.Staging.Add(p); err != nil {
		return err
	}
	st.index.add(st.products, p.InputURLs)
	st.products++
	return nil
}
