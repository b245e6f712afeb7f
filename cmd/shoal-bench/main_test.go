package main

import (
	"strings"
	"testing"
)

// Bad flags are refused before anything starts, with one line naming the
// flag.
func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--sizes", "8,x"}, `--sizes: "x" is not a positive whole number`},
		{[]string{"--sizes", "0"}, `--sizes: "0" is not a positive whole number`},
		{[]string{"--instances", "-5"}, `--instances: "-5" is not a positive whole number`},
		{[]string{"--modes", "threads"}, `--modes: "threads" is neither in-process nor processes`},
	} {
		err := app().Run(append([]string{"shoal-bench", "--out", ""}, tc.args...))
		if err == nil || err.Error() != tc.want || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestInts(t *testing.T) {
	got, err := ints("sizes", "8, 16,128")
	if err != nil || len(got) != 3 || got[0] != 8 || got[1] != 16 || got[2] != 128 {
		t.Errorf("ints = %v, %v", got, err)
	}
}
