print("Hello from NanoGrid Plus!")
