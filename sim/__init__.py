"""spikelut.sim: golden models, cocotb testbenches and runners, simulated peripherals."""
