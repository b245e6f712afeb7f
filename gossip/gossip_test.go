package gossip

import "testing"

func TestPushFanoutGrowsWithLogN(t *testing.T) {
	for _, tc := range []struct{ n, least, want int }{
		{1, 3, 3}, {8, 3, 5}, {64, 3, 7}, {1000, 3, 9}, {8, 6, 6},
	} {
		if got := pushFanout(tc.n, tc.least); got != tc.want {
			t.Errorf("pushFanout(%d, %d) = %d, want %d", tc.n, tc.least, got, tc.want)
		}
	}
}
