extern const char iface_io_ferry[];
