package codepkg

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
)

// benchZip is a ~5 MB package: a 2 MB binary-like bootstrap that barely
// compresses and 60 text files of 50 KB that compress well.
func benchZip(b *testing.B) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	bin := make([]byte, 2<<20)
	for i := range bin {
		bin[i] = byte(rng.IntN(64)) // some redundancy, like code
	}
	es := []ent{exe("bootstrap", string(bin))}
	words := strings.Fields("func return if else for range var const type struct interface map chan go defer select case")
	for i := range 60 {
		var sb strings.Builder
		for sb.Len() < 50<<10 {
			sb.WriteString(words[rng.IntN(len(words))])
			sb.WriteByte(' ')
		}
		es = append(es, file(fmt.Sprintf("lib/pkg%02d/file.txt", i), sb.String()))
	}
	return makeZip(b, es...)
}

func BenchmarkUnpack(b *testing.B) {
	z := benchZip(b)
	parent := b.TempDir()
	info, err := Inspect(z, Limits{}, true)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(info.UnpackedSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dst := filepath.Join(parent, "pkg")
		if _, err := Unpack(z, dst, Limits{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := removeTree(dst); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(len(z)), "zip-bytes")
}

func BenchmarkInspect(b *testing.B) {
	z := benchZip(b)
	info, err := Inspect(z, Limits{}, true)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(info.UnpackedSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Inspect(z, Limits{}, true); err != nil {
			b.Fatal(err)
		}
	}
}
