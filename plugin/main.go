// Command kubectl-overcommit is the kubectl plugin of overcommit.
package main

import (
	"fmt"

	"github.com/overcommit-dev/overcommit/shared/version"
)

func main() {
	fmt.Println(version.Version)
}
