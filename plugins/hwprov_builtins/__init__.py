"""The built-in plugins: I2C buses and their sensors, serial UARTs, GPIO, Bluetooth."""
