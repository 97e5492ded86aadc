"""The local real cluster used by the demo and the tests."""
