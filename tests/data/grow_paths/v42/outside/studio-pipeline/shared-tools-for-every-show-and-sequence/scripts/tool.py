print('a script kept outside the project')
