"""What is attached, read from the host: udev, the inventory, I2C bus access, node lookups."""
