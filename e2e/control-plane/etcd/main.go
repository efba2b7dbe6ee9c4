// Command etcd is etcd's own server entry point, built from the published etcd server module:
// etcd's server/go.mod carries replace lines, so `go install` cannot build it directly.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
