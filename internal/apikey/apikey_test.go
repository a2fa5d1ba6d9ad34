package apikey

import (
	"crypto/sha256"
	"testing"
)

func TestNewKeysAreUniqueAndHashed(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		k, err := New()
		if err != nil {
			t.Fatal(err)
		}
		if seen[k.Plain] {
			t.Fatalf("duplicate key %s", k.Plain)
		}
		seen[k.Plain] = true
		if k.Hash != sha256.Sum256([]byte(k.Plain)) {
			t.Fatalf("hash of %s is not its SHA-256", k.Plain)
		}
		if !Plausible(k.Plain) {
			t.Fatalf("minted key %s is not plausible", k.Plain)
		}
		if len(k.Display) != displayLen || k.Plain[:displayLen] != k.Display {
			t.Fatalf("display %q is not the start of %q", k.Display, k.Plain)
		}
	}
}

func TestPlausible(t *testing.T) {
	k, err := New()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		in   string
		want bool
	}{
		{k.Plain, true},
		{"", false},
		{"rr_", false},
		{k.Plain[3:], false},
		{k.Plain[:len(k.Plain)-1], false},
		{k.Plain + "A", false},
		{"xx_" + k.Plain[3:], false},
		{"rr_" + "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!", false},
	}
	for _, c := range cases {
		if got := Plausible(c.in); got != c.want {
			t.Errorf("Plausible(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}
