"""The local stack behind `make run`: an AWS emulator, webapi and scheduld as three processes."""
