"""AWS building blocks (cdktf core constructs) composed by `modules.aws.stack.build`."""
