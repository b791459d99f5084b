module github.com/libreactor/libreactor/bindings/go

go 1.19
