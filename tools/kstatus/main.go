// Command kstatus computes the kstatus result (sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute, the library Flux's
// `wait`/`healthChecks` use) of Kubernetes objects read as JSON, so that tests can check what Flux would conclude
// about recorded RedisMigration statuses.
//
//	kstatus FILE...   each FILE holds one object (JSON); prints one JSON line per file:
//	                  {"file": FILE, "status": "InProgress|Current|Failed|Terminating|NotFound|Unknown", "message": "..."}
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	File    string `json:"file"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: kstatus FILE...")
		os.Exit(2)
	}
	out := json.NewEncoder(os.Stdout)
	for _, file := range os.Args[1:] {
		data, err := os.ReadFile(file)
		if err != nil {
			fmt.Fprintf(os.Stderr, "kstatus: %v\n", err)
			os.Exit(1)
		}
		// UnmarshalJSON keeps integers as int64, as the API machinery (and Flux) sees them.
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(data); err != nil {
			fmt.Fprintf(os.Stderr, "kstatus: %s: %v\n", file, err)
			os.Exit(1)
		}
		res, err := status.Compute(obj)
		if err != nil {
			fmt.Fprintf(os.Stderr, "kstatus: %s: %v\n", file, err)
			os.Exit(1)
		}
		if err := out.Encode(result{File: file, Status: res.Status.String(), Message: res.Message}); err != nil {
			fmt.Fprintf(os.Stderr, "kstatus: %v\n", err)
			os.Exit(1)
		}
	}
}
