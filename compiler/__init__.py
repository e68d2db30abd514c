"""spikelut.compiler: IR, model files, training, quantisation, backend, toolchain and CLI."""
