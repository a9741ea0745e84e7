// Command coredns is CoreDNS with only the plugins the test cluster's DNS needs: cluster
// names from the Kubernetes API (kubernetes), a cache, health and readiness endpoints and
// error logging. No forwarding: names outside the cluster domain are not resolved, so no DNS
// query ever leaves the machine.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() {
	// The plugins' order in a server's chain, in CoreDNS's own relative order.
	dnsserver.Directives = []string{"ready", "health", "errors", "log", "loadbalance", "cache", "kubernetes"}
	coremain.Run()
}
