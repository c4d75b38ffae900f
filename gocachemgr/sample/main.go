// Command sample is the Go module gocachemgr's demo and tests build.
package main

import (
	"fmt"
	"os"

	"example.com/gocachemgr-sample/greet"
	"example.com/gocachemgr-sample/stats"
)

func main() {
	name := "gocachemgr"
	if len(os.Args) > 1 {
		name = os.Args[1]
	}
	fmt.Println(greet.Hello(name))
	fmt.Printf("mean of 1..10 = %.1f\n", stats.Mean([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}))
}
