package testenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
)

// freePortPair returns two distinct ports free on 127.0.0.1 right now.
//
// They come from 20000-32767, below Linux's default ephemeral range
// (32768-60999), so that outgoing connections do not take them between this
// check and the server's bind; random picks keep parallel test binaries
// apart, and callers retry on the rare collision.
func freePortPair() (int, int, error) {
	var ports []int
	for tries := 0; len(ports) < 2 && tries < 200; tries++ {
		p := 20000 + rand.IntN(12768)
		if len(ports) == 1 && ports[0] == p {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		ln.Close()
		ports = append(ports, p)
	}
	if len(ports) < 2 {
		return 0, 0, fmt.Errorf("no free port pair on 127.0.0.1 in 20000-32767")
	}
	return ports[0], ports[1], nil
}
