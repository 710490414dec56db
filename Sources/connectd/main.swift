print("connectd")
