module example.com/gocachemgr-sample

go 1.24
