print("hello from an external text")
